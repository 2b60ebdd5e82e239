// Datasets and splits (#/datasets, #/datasets?split=ID): the datasets with their class balance,
// an upload form, a split form, and each split's class balance per part.  With a project chosen
// in the header's switcher: the built-ins and that project's uploads and splits, and what is
// uploaded or split goes into it (else into the user's first project they may edit).

import * as api from "./api.js";
import { color } from "./charts.js";
import { clearErrors, field, h, readFields, showErrors } from "./forms.js";
import * as session from "./session.js";

// One stacked bar: each class's share of `counts`, labelled with the count.
export function balanceBar(counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const classes = Object.keys(counts).sort((a, b) => (Number(a) - Number(b)) || a.localeCompare(b));
  return h("span", { class: "balance", title: classes.map((c) => `${c}: ${counts[c]}`).join(", ") },
    classes.map((c, i) => h("span", {
      class: "segment", style: `width:${(100 * counts[c]) / total}%;background:${color(i)}`,
      dataset: { class: c, count: counts[c] },
    }, String(counts[c]))));
}

function datasetsTable(datasets) {
  return h("table", { class: "list", id: "datasets-table" },
    h("thead", {}, h("tr", {}, ["id", "name", "source", "task", "samples", "features", "class balance"].map((t) => h("th", {}, t)))),
    h("tbody", {}, datasets.map((d) => h("tr", { dataset: { id: d.id } },
      h("td", {}, String(d.id)), h("td", {}, d.name, d.description ? h("small", { class: "muted" }, ` ${d.description}`) : null),
      h("td", {}, d.source), h("td", {}, d.task), h("td", { class: "num" }, String(d.n_samples)),
      h("td", {}, d.feature_shape.join("×")),
      h("td", {}, d.class_counts ? balanceBar(d.class_counts) : "–")))));
}

const PART_ORDER = ["train", "val", "test"];

export function splitCard(split, datasetName = String(split.dataset)) {
  const parts = Object.keys(split.sizes).sort((a, b) => PART_ORDER.indexOf(a) - PART_ORDER.indexOf(b));
  return h("div", { class: "card split", id: `split-${split.id}`, dataset: { id: split.id } },
    h("h3", {}, `Split #${split.id} · ${datasetName} · ${split.strategy} · seed ${split.seed}`),
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, "part"), h("th", {}, "fraction"), h("th", {}, "size"), h("th", {}, "class balance"))),
      h("tbody", {}, parts.map((part) => h("tr", { dataset: { part } },
        h("td", {}, part), h("td", { class: "num" }, String(split.fractions[part])),
        h("td", { class: "num" }, String(split.sizes[part])),
        h("td", {}, split.class_counts?.[part] ? balanceBar(split.class_counts[part]) : "–"))))),
    h("a", { class: "button", href: `#/new?split=${split.id}` }, "New experiment on this split"));
}

function uploadForm(onDone) {
  const form = h("form", { id: "upload-dataset", novalidate: true },
    h("div", { class: "grid" },
      field("name", "name", { type: "string" }, ""),
      h("div", { class: "field", dataset: { field: "file" } },
        h("label", {}, h("span", { class: "field-name" }, "file"), h("input", { type: "file", name: "file-input", accept: ".csv,.npz" })),
        h("small", { class: "hint" }, "A .csv with a label column, or a .npz holding x (N, …) and y (N,)."),
        h("p", { class: "field-error", role: "alert" })),
      field("target", "target", { type: "string", description: "The label column of a .csv." }, ""),
      field("task", "task", { enum: ["classification", "regression"], nullable: true, description: "Default: inferred from the labels." }, null)),
    h("div", { class: "form-errors", role: "alert" }),
    h("button", { type: "submit", class: "primary" }, "Upload"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = readFields(form);
    const body = new FormData();
    for (const key of ["name", "target", "task"]) if (values[key]) body.append(key, values[key]);
    if (session.project()) body.append("project_id", String(session.project()));
    const file = form.elements["file-input"].files[0];
    if (file) body.append("file", file);
    try {
      onDone(await api.uploadDataset(body));
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      showErrors(form, error.detail);
    }
  });
  return form;
}

function splitForm(datasets, onDone) {
  const fraction = (part, value) => field(`fractions.${part}`, part, { type: "number", minimum: 0, maximum: 1 }, value);
  const form = h("form", { id: "create-split", novalidate: true },
    h("div", { class: "grid" },
      h("div", { class: "field", dataset: { field: "dataset" } },
        h("label", {}, h("span", { class: "field-name" }, "dataset"),
          h("select", { name: "dataset" }, datasets.map((d) => h("option", { value: d.id }, `${d.name}${d.source === "upload" ? ` (#${d.id})` : ""}`)))),
        h("p", { class: "field-error", role: "alert" })),
      field("strategy", "strategy", { enum: ["stratified", "random"], description: "Stratified keeps each part's class balance." }, "stratified"),
      field("seed", "seed", { type: "integer", minimum: 0 }, 0)),
    h("div", { class: "grid", id: "split-fractions" }, fraction("train", 0.7), fraction("val", 0.2), fraction("test", 0.1)),
    h("div", { class: "form-errors", role: "alert" }),
    h("button", { type: "submit", class: "primary" }, "Create split"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const top = readFields(form.querySelector(".grid"));
    const chosen = form.elements.dataset.value;
    const body = {
      dataset: /^\d+$/.test(chosen) ? Number(chosen) : chosen,
      strategy: top.strategy, seed: top.seed ?? 0,
      fractions: readFields(form.querySelector("#split-fractions")),
    };
    if (session.project()) body.project_id = session.project();
    try {
      onDone(await api.createSplit(body));
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      showErrors(form, error.detail);
    }
  });
  return form;
}

export async function render(root) {
  const project = session.project();
  const [datasets, splits] = await Promise.all([api.listDatasets(project), api.listSplits(project)]);
  const names = Object.fromEntries(datasets.map((d) => [String(d.id), d.name]));
  const card = (split) => splitCard(split, names[String(split.dataset)]);
  const splitList = h("div", { id: "splits" }, splits.slice().reverse().map(card));
  const heading = h("h2", {}, `Splits (${splits.length})`);
  root.replaceChildren(
    h("h1", {}, "Datasets and splits"),
    h("div", { class: "card" }, h("h2", {}, "Datasets"), h("div", { class: "scroll" }, datasetsTable(datasets))),
    h("div", { class: "two" },
      h("div", { class: "card" }, h("h2", {}, "Upload a dataset"),
        uploadForm(() => render(root))),
      h("div", { class: "card" }, h("h2", {}, "Create a split"),
        splitForm(datasets, (s) => {
          splitList.prepend(card(s));
          heading.textContent = `Splits (${splitList.children.length})`;
        }))),
    heading,
    splitList);
}
