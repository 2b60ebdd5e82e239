// Experiments (#/experiments?status=&tag=&solver=&limit=): the list with filters, each run's
// best validation metric, and a selection to compare.

import * as api from "./api.js";
import { formatNumber } from "./charts.js";
import { h } from "./forms.js";

export const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
// Higher is better for these (the api's rule for "best").
const HIGHER_IS_BETTER = /(accuracy|acc|r2|f1|precision|recall|auc)$/;
export const higherIsBetter = (name) => HIGHER_IS_BETTER.test(name);
// The validation metric shown in the list, first one a run has.
const VALIDATION = ["val/accuracy", "val/r2", "val/loss"];
const COMPARE_BATCH = 50; // the api's default DESCENT_MAX_COMPARE_EXPERIMENTS

export function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status);
}

export function progressBar(progress) {
  const pct = Math.round((progress || 0) * 100);
  return h("span", { class: "progress", title: `${pct}%` }, h("span", { style: `width:${pct}%` }), h("em", {}, `${pct}%`));
}

// Best validation value per experiment id, read through /compare in batches (every run: a
// re-queued one keeps the metrics of its earlier attempt).
async function bestValidation(experiments) {
  const ids = experiments.map((e) => e.id);
  const batches = [];
  for (let i = 0; i < ids.length; i += COMPARE_BATCH) batches.push(ids.slice(i, i + COMPARE_BATCH));
  const results = await Promise.all(batches.map((b) => api.compare(b, { names: VALIDATION, maxPoints: 4 })));
  const best = {};
  for (const row of results.flatMap((r) => r.summary)) {
    const current = best[row.experiment_id];
    if (!current || VALIDATION.indexOf(row.name) < VALIDATION.indexOf(current.name)) best[row.experiment_id] = row;
  }
  return best;
}

function filterBar(params, solvers) {
  const apply = (event) => {
    event.preventDefault();
    const form = event.target.closest("form");
    const next = new URLSearchParams();
    for (const key of ["status", "tag", "solver", "limit"]) if (form.elements[key].value) next.set(key, form.elements[key].value);
    location.hash = `#/experiments?${next}`;
  };
  const option = (value, text, key) => h("option", { value, selected: params.get(key) === value }, text);
  return h("form", { class: "filters", onsubmit: apply, onchange: apply },
    h("label", {}, "status ", h("select", { name: "status" }, option("", "any", "status"), STATUSES.map((s) => option(s, s, "status")))),
    h("label", {}, "tag ", h("input", { name: "tag", value: params.get("tag") || "", placeholder: "any", size: 10 })),
    h("label", {}, "solver ", h("select", { name: "solver" }, option("", "any", "solver"), solvers.map((s) => option(s.name, s.name, "solver")))),
    h("label", {}, "show ", h("select", { name: "limit" }, ["50", "100", "500"].map((n) => h("option", {
      value: n, selected: (params.get("limit") || "100") === n,
    }, n)))),
  );
}

export async function render(root, params) {
  const limit = Number(params.get("limit") || 100);
  const filters = { status: params.get("status"), tag: params.get("tag"), solver: params.get("solver"), limit };
  const [page, solvers] = await Promise.all([api.listExperiments(filters), api.catalog("solvers")]);
  const selected = new Set();
  const compareButton = h("button", { class: "primary", disabled: true, onclick: () => {
    location.hash = `#/compare?ids=${[...selected].join(",")}`;
  } }, "Compare selected");
  const updateButton = () => {
    compareButton.disabled = selected.size < 2;
    compareButton.textContent = `Compare selected (${selected.size})`;
  };
  const bestCells = {};
  const rows = page.items.map((e) => {
    bestCells[e.id] = h("td", { class: "num best" }, "…");
    return h("tr", { dataset: { id: e.id } },
      h("td", {}, h("input", { type: "checkbox", "aria-label": `select #${e.id}`, onchange: (ev) => {
        if (ev.target.checked) selected.add(e.id); else selected.delete(e.id);
        updateButton();
      } })),
      h("td", { class: "num" }, `#${e.id}`),
      h("td", {}, h("a", { href: `#/experiments/${e.id}` }, e.name), " ",
        e.tags.map((t) => h("a", { class: "tag", href: `#/experiments?tag=${encodeURIComponent(t)}` }, t))),
      h("td", {}, statusBadge(e.status)),
      h("td", {}, progressBar(e.progress)),
      h("td", {}, e.solver),
      h("td", { class: "num" }, formatNumber(e.spec.solver?.base_lr)),
      bestCells[e.id],
      h("td", { class: "muted" }, new Date(e.created_at).toLocaleString()));
  });
  const table = h("table", { class: "list", id: "experiments-table" },
    h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "id"), h("th", {}, "name"), h("th", {}, "status"),
      h("th", {}, "progress"), h("th", {}, "solver"), h("th", {}, "base LR"), h("th", {}, "best validation"),
      h("th", {}, "created"))),
    h("tbody", {}, rows));
  root.replaceChildren(
    h("div", { class: "toolbar" }, h("h1", {}, "Experiments"), h("a", { class: "button", href: "#/new" }, "New experiment"), compareButton),
    filterBar(params, solvers),
    h("p", { class: "muted", id: "experiments-count" }, `${page.items.length} of ${page.total} shown`),
    table);
  updateButton();

  const best = await bestValidation(page.items);
  for (const e of page.items) {
    const row = best[e.id];
    bestCells[e.id].textContent = row ? `${formatNumber(row.best_value)} ${row.name}` : "–";
  }
  table.dataset.bestLoaded = "1";
}
