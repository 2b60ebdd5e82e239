// Experiments (#/experiments?status=&tag=&solver=&limit=): the list with filters, each run's
// best validation metric, and a selection to compare.  Only the project chosen in the header's
// switcher, if one is.

import * as api from "./api.js";
import { formatNumber } from "./charts.js";
import { h } from "./forms.js";
import * as session from "./session.js";

export const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "pruned"];
// The validation metric shown in the list: the first one a run has (the api picks it, with the
// page, from `?best=`, and sends which way the metric improves).
const VALIDATION = ["val/accuracy", "val/r2", "val/loss"];

export function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status);
}

export function progressBar(progress) {
  const pct = Math.round((progress || 0) * 100);
  return h("span", { class: "progress", title: `${pct}%` }, h("span", { style: `width:${pct}%` }), h("em", {}, `${pct}%`));
}

function bestCell(best) {
  if (!best) return h("td", { class: "num best" }, "–");
  const title = `at step ${best.step}; ${best.higher_is_better ? "highest" : "lowest"} is best`;
  return h("td", { class: "num best", title, dataset: { higherIsBetter: String(best.higher_is_better) } },
    `${formatNumber(best.value)} ${best.name}`);
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
  const filters = {
    status: params.get("status"), tag: params.get("tag"), solver: params.get("solver"), limit, best: VALIDATION.join(","),
    project_id: session.project(),
  };
  const [page, solvers] = await Promise.all([api.listExperiments(filters), api.catalog("solvers")]);
  const selected = new Set();
  const compareButton = h("button", { class: "primary", disabled: true, onclick: () => {
    location.hash = `#/compare?ids=${[...selected].join(",")}`;
  } }, "Compare selected");
  const updateButton = () => {
    compareButton.disabled = selected.size < 2;
    compareButton.textContent = `Compare selected (${selected.size})`;
  };
  const rows = page.items.map((e) =>
    h("tr", { dataset: { id: e.id } },
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
      bestCell(e.best),
      h("td", { class: "muted" }, new Date(e.created_at).toLocaleString())));
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
}
