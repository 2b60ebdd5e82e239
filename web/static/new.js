// New experiment (#/new, or #/new?from=ID to clone one with changes): data and architecture,
// then the "Solver & scheduler" section rendered from the catalogs' JSON Schema, then training.
// The split picker lists the splits of the project chosen in the header (plus the one asked
// for by ?split= or the clone's); the experiment goes into its split's project.

import * as api from "./api.js";
import { clearErrors, field, fieldsFor, h, readFields, showErrors } from "./forms.js";
import * as session from "./session.js";

// Shown first in the solver section.  The fields come from the catalog's experiment_fields:
// each solver's hyperparameters under the names an experiment body uses (base_lr, and a
// weight_decay for every solver: its own, or an L2 penalty where it has none).
const SOLVER_FIRST = ["base_lr", "weight_decay"];

async function trainingSchema() {
  const response = await fetch(`${api.API}/openapi.json`);
  return (await response.json()).components.schemas.TrainingSpec;
}

function select(name, options, selected, attrs = {}) {
  return h("select", { name, ...attrs },
    options.map(([value, text]) => h("option", { value, selected: String(value) === String(selected) }, text)));
}

function entryNote(entry) {
  return h("p", { class: "entry-note" }, entry.summary, " ", h("cite", {}, entry.reference));
}

export async function render(root, params) {
  const fromId = params.get("from");
  const [solvers, schedulers, architectures, splits, training, source] = await Promise.all([
    api.catalog("solvers"), api.catalog("schedulers"), api.catalog("architectures"), api.listSplits(session.project()),
    trainingSchema(), fromId ? api.getExperiment(fromId) : null,
  ]);
  const spec = source ? source.spec : {};
  // ?base_lr= (an LR range test's "Use this LR"): the solver starts at that rate, and the clone
  // trains instead of testing rates again
  if (params.get("base_lr")) {
    spec.solver = { ...spec.solver, base_lr: Number(params.get("base_lr")) };
    if (spec.training) spec.training = { ...spec.training, range_test: null };
  }
  const wanted = Number(spec.split_id ?? params.get("split"));
  if (wanted && !splits.some((s) => s.id === wanted)) {
    // another project's split (a clone, or "New experiment on this split"): offer it too
    const extra = await api.getSplit(wanted).catch((error) => { if (error instanceof api.SignedOut) throw error; return null; });
    if (extra) splits.push(extra);
  }
  const byName = (list) => Object.fromEntries(list.map((e) => [e.name, e]));
  const solverByName = byName(solvers);
  const schedulerByName = byName(schedulers);
  const architectureByName = byName(architectures);

  const architectureFields = h("div", { class: "grid" });
  const solverFields = h("div", { class: "grid" });
  const schedulerFields = h("div", { class: "grid" });

  const drawArchitecture = (name, values = {}) => {
    architectureFields.replaceChildren(entryNote(architectureByName[name]),
      ...fieldsFor("architecture", architectureByName[name].hyperparameters, values));
  };
  const drawSolver = (name, values = {}) => {
    const schema = solverByName[name].experiment_fields;
    const first = SOLVER_FIRST.filter((k) => k in schema.properties)
      .map((k) => field(`solver.${k}`, k, schema.properties[k], values[k], k === "base_lr" ? "base LR" : k.replace("_", " ")));
    solverFields.replaceChildren(entryNote(solverByName[name]), ...first,
      ...fieldsFor("solver", schema, values, { skip: SOLVER_FIRST }));
  };
  const drawScheduler = (name, values = {}) => {
    if (!name) { schedulerFields.replaceChildren(h("p", { class: "entry-note" }, "The learning rate stays at base LR.")); return; }
    // lengths derive from the epochs again unless typed in: a clone must not keep the old ones
    const schema = schedulerByName[name].hyperparameters;
    const kept = Object.fromEntries(Object.entries(values).filter(([k]) => !schema.properties[k]?.["x-derived-from"]));
    schedulerFields.replaceChildren(entryNote(schedulerByName[name]), ...fieldsFor("scheduler", schema, kept));
  };

  const architectureName = spec.architecture?.name || (architectureByName.mlp ? "mlp" : architectures[0].name);
  const solverName = spec.solver?.name || (solverByName.adam ? "adam" : solvers[0].name);
  const schedulerName = source ? spec.scheduler?.name || "" : (schedulerByName.constant ? "constant" : "");

  const splitOptions = splits.map((s) => [s.id, `#${s.id} ${s.dataset} · ${s.strategy} · ${Object.entries(s.sizes).map(([k, v]) => `${k} ${v}`).join(" / ")}`]);
  const form = h("form", { id: "new-experiment", novalidate: true },
    h("section", { class: "card" }, h("h2", {}, "Experiment"),
      h("div", { class: "grid" },
        field("name", "name", { type: "string", description: "Shown in lists and comparisons." },
          source ? `${source.name} (clone)` : ""),
        field("tags", "tags", { type: "string", description: "Comma-separated." }, (spec.tags || []).join(", ")),
        field("description", "description", { type: "string" }, spec.description || ""))),
    h("section", { class: "card" }, h("h2", {}, "Data and model"),
      h("div", { class: "grid" },
        h("div", { class: "field", dataset: { field: "split_id" } },
          h("label", {}, h("span", { class: "field-name" }, "split"),
            splits.length ? select("split_id", splitOptions, spec.split_id ?? params.get("split") ?? splits[splits.length - 1].id)
              : h("span", {}, "No split yet: ", h("a", { href: "#/datasets" }, "create one"))),
          h("p", { class: "field-error", role: "alert" })),
        h("div", { class: "field", dataset: { field: "architecture" } },
          h("label", {}, h("span", { class: "field-name" }, "architecture"),
            select("architecture-name", architectures.map((a) => [a.name, a.name]), architectureName,
              { onchange: (e) => drawArchitecture(e.target.value) })),
          h("p", { class: "field-error", role: "alert" }))),
      architectureFields),
    h("section", { class: "card", id: "solver-section" }, h("h2", {}, "Solver & scheduler"),
      h("div", { class: "field", dataset: { field: "solver" } },
        h("label", {}, h("span", { class: "field-name" }, "solver"),
          select("solver-name", solvers.map((s) => [s.name, `${s.name} (${s.family})`]), solverName,
            { onchange: (e) => drawSolver(e.target.value) })),
        h("p", { class: "field-error", role: "alert" })),
      solverFields,
      h("div", { class: "field", dataset: { field: "scheduler" } },
        h("label", {}, h("span", { class: "field-name" }, "scheduler"),
          select("scheduler-name", [["", "none"], ...schedulers.map((s) => [s.name, s.name])], schedulerName,
            { onchange: (e) => drawScheduler(e.target.value) })),
        h("p", { class: "field-error", role: "alert" })),
      schedulerFields),
    h("section", { class: "card" }, h("h2", {}, "Training"),
      h("div", { class: "grid", id: "training-fields" }, fieldsFor("training", training, spec.training || {}))),
    h("div", { class: "form-errors", role: "alert" }),
    h("button", { type: "submit", class: "primary" }, source ? "Create the clone" : "Create experiment"));

  drawArchitecture(architectureName, spec.architecture || {});
  drawSolver(solverName, spec.solver || {});
  drawScheduler(schedulerName, spec.scheduler || {});

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const names = {
      architecture: form.elements["architecture-name"].value,
      solver: form.elements["solver-name"].value,
      scheduler: form.elements["scheduler-name"].value,
    };
    const top = readFields(form.querySelector("section"));
    const body = {
      name: top.name || "",
      description: top.description || "",
      tags: (top.tags || "").split(",").map((t) => t.trim()).filter(Boolean),
      split_id: form.elements.split_id ? Number(form.elements.split_id.value) : null,
      architecture: { name: names.architecture, ...readFields(architectureFields) },
      solver: { name: names.solver, ...readFields(solverFields) },
      scheduler: names.scheduler ? { name: names.scheduler, ...readFields(schedulerFields) } : null,
      training: readFields(form.querySelector("#training-fields")),
    };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const created = await api.createExperiment(body);
      location.hash = `#/experiments/${created.id}`;
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      showErrors(form, error.detail, names);
    } finally {
      button.disabled = false;
    }
  });

  root.replaceChildren(
    h("h1", {}, source ? `Clone #${source.id} ${source.name} with changes` : "New experiment"), form);
}
