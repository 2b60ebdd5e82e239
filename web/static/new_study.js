// New study (#/studies/new): a solver tournament (POST /studies/tournament: solvers × log-spaced
// learning rates on one split and architecture) or a search (POST /studies: a search space as
// JSON over a base experiment).  The split and model are shared; each kind has its own section,
// only the chosen one in the form, so the api's 422 lands beside the field it names.

import * as api from "./api.js";
import { clearErrors, field, fieldsFor, h, readFields, showErrors } from "./forms.js";
import * as session from "./session.js";

// The ten solvers of Hasty's optimizer comparison, pre-checked; the same list as
// HASTY_SOLVERS in core/studies/tournament.py (the api's default when no solver is named).
const HASTY = ["sgd", "adagrad", "adadelta", "asgd", "rprop", "rmsprop", "adam", "adamax", "adamw", "lion"];

// The search space a new search starts from (core/studies/space.py's EXAMPLE_STUDY).
const EXAMPLE_SPACE = {
  "solver.name": { type: "categorical", values: ["adam", "sgd"], when: {
    adam: { "solver.base_lr": { type: "float", low: 1e-4, high: 1e-1, log: true } },
    sgd: { "solver.base_lr": { type: "float", low: 1e-3, high: 1.0, log: true },
      "solver.momentum": { type: "float", low: 0.0, high: 0.99 } },
  } },
};

const PRUNERS = ["none", "median", "asha"];
const int = (minimum, description, extra = {}) => ({ type: "integer", minimum, description, ...extra });
const TOURNAMENT_FIELDS = [
  ["lr_low", "lowest LR", { type: "number", exclusiveMinimum: 0, description: "The smallest base_lr tried." }, 1e-4],
  ["lr_high", "highest LR", { type: "number", exclusiveMinimum: 0, description: "The largest base_lr tried." }, 1],
  ["points", "LRs per solver", int(2, "Log-spaced from the lowest to the highest.", { maximum: 50 }), 5],
  ["pruner", "pruner", { enum: PRUNERS, description: "How hopeless trials stop early." }, "asha"],
  ["per_solver", "per solver", { type: "boolean", description: "Prune a trial against its own solver's trials only: "
    + "every solver keeps its best trials, for a complete sensitivity map." }, false],
  ["metric", "metric", { type: "string", description: "The objective: its best epoch's value." }, "val/accuracy"],
  ["parallel", "parallel", int(1, "Trials running at once."), 4],
  ["seed", "seed", int(0, "Seeds the sampler."), 0],
];
const SEARCH_FIELDS = [
  ["objective.metric", "metric", { type: "string", description: "The metric to optimise." }, "val/accuracy"],
  ["objective.mode", "mode", { enum: ["min", "max"], nullable: true, description: "Default: from the metric's name." }, null],
  ["strategy", "strategy", { enum: ["grid", "random", "tpe"], description: "grid needs `points` on every float." }, "tpe"],
  ["pruner.name", "pruner", { enum: PRUNERS }, "asha"],
  ["budget.max_trials", "max trials", { type: "integer", minimum: 1, nullable: true, description: "Default: the grid's size, else 20." }, null],
  ["budget.parallel", "parallel", int(1, "Trials running at once."), 4],
  ["seed", "seed", int(0, "Seeds the sampler."), 0],
];

const fieldsOf = (list) => list.map(([path, label, schema, value]) => field(path, path.split(".").pop(), schema, value, label));

function select(name, options, selected, attrs = {}) {
  return h("select", { name, ...attrs },
    options.map(([value, text]) => h("option", { value, selected: String(value) === String(selected) }, text)));
}

// A base-spec error names the architecture's or solver's union tag ("base.architecture.mlp.width"):
// without it, the path is the field's.
function untagged(detail, tags) {
  if (typeof detail === "string") return detail;
  return detail.map(({ loc, msg }) => {
    const path = [...loc];
    if (path[1] === "base" && tags[path[2]] !== undefined && path[3] === tags[path[2]]) path.splice(3, 1);
    return { loc: path, msg };
  });
}

export async function render(root, params) {
  const [solvers, architectures, splits] = await Promise.all([
    api.catalog("solvers"), api.catalog("architectures"), api.listSplits(session.project()),
  ]);
  const architectureByName = Object.fromEntries(architectures.map((a) => [a.name, a]));
  const architectureFields = h("div", { class: "grid" });
  const drawArchitecture = (name) => {
    architectureFields.replaceChildren(h("p", { class: "entry-note" }, architectureByName[name].summary),
      ...fieldsFor("base.architecture", architectureByName[name].hyperparameters));
  };
  const architectureName = architectureByName.mlp ? "mlp" : architectures[0].name;
  const wantedSplit = params.get("split") ?? (splits.length ? splits[splits.length - 1].id : "");
  const splitOptions = splits.map((s) => [s.id, `#${s.id} ${s.dataset} · ${s.strategy} · ${Object.entries(s.sizes).map(([k, v]) => `${k} ${v}`).join(" / ")}`]);
  const labelled = (path, label, control) => h("div", { class: "field", dataset: { field: path } },
    h("label", {}, h("span", { class: "field-name" }, label), control), h("p", { class: "field-error", role: "alert" }));

  const trainingFields = h("div", { class: "grid", id: "study-training" },
    field("base.training.epochs", "epochs", int(1, "Epochs of every trial."), 10),
    field("base.training.batch_size", "batch_size", int(1, "Examples per step."), 32, "batch size"));
  const shared = h("section", { class: "card" }, h("h2", {}, "Data and model"),
    h("div", { class: "grid" },
      field("name", "name", { type: "string", description: "Shown in the studies list." }, ""),
      labelled("base.split_id", "split", splits.length ? select("split_id", splitOptions, wantedSplit)
        : h("span", {}, "No split yet: ", h("a", { href: "#/datasets" }, "create one"))),
      labelled("base.architecture", "architecture", select("architecture-name", architectures.map((a) => [a.name, a.name]),
        architectureName, { onchange: (e) => drawArchitecture(e.target.value) }))),
    architectureFields, trainingFields);

  const tournamentFields = h("div", { class: "grid", id: "tournament-fields" }, fieldsOf(TOURNAMENT_FIELDS));
  const solverBoxes = h("div", { class: "field checks", dataset: { field: "solvers" }, id: "tournament-solvers" },
    h("span", { class: "field-name" }, "solvers"),
    h("div", { class: "check-list" }, solvers.map((s) => h("label", { title: s.summary },
      h("input", { type: "checkbox", name: "solver", value: s.name, checked: HASTY.includes(s.name) }), ` ${s.name}`))),
    h("small", { class: "hint" }, "Pre-checked: the ten solvers of Hasty's comparison."),
    h("p", { class: "field-error", role: "alert" }));
  const tournament = h("section", { class: "card", id: "tournament-section" }, h("h2", {}, "Solver tournament"),
    h("p", { class: "entry-note" }, "Every checked solver at each learning rate (a grid), hopeless trials stopped early."),
    solverBoxes, tournamentFields);

  const spaceText = h("textarea", { name: "space", rows: 14, spellcheck: "false" }, JSON.stringify(EXAMPLE_SPACE, null, 2));
  const searchFields = h("div", { class: "grid", id: "search-fields" }, fieldsOf(SEARCH_FIELDS));
  const solverNames = solvers.map((s) => [s.name, s.name]);
  const search = h("section", { class: "card", id: "search-section" }, h("h2", {}, "Search"),
    h("div", { class: "field", dataset: { field: "space" } },
      h("label", {}, h("span", { class: "field-name" }, "search space (JSON)"), spaceText),
      h("small", { class: "hint" }, "Dotted spec path → {type: float|int|categorical, …}; a categorical's `when` adds parameters per value."),
      h("p", { class: "field-error", role: "alert" })),
    h("div", { class: "grid" }, labelled("base.solver", "base solver", select("base-solver", solverNames, "adam"))),
    searchFields);

  const slot = h("div", {}, tournament);
  const kind = () => form.elements.kind.value;
  const kindPicker = h("div", { class: "toolbar", id: "study-kind" },
    ["tournament", "search"].map((k) => h("label", {},
      h("input", { type: "radio", name: "kind", value: k, checked: k === (params.get("kind") || "tournament"),
        onchange: () => { clearErrors(form); slot.replaceChildren(kind() === "search" ? search : tournament); } }),
      k === "tournament" ? " Solver tournament" : " Search")));
  const form = h("form", { id: "new-study", novalidate: true }, kindPicker, shared, slot,
    h("div", { class: "form-errors", role: "alert" }), h("button", { type: "submit", class: "primary" }, "Create study"));
  drawArchitecture(architectureName);
  if (params.get("kind") === "search") slot.replaceChildren(search);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    // not form.elements.name: the search's pruner field is a "name" too
    const name = shared.querySelector(".field[data-field=name] input").value.trim();
    const architecture = form.elements["architecture-name"].value;
    const base = {
      name: name || "study",
      split_id: form.elements.split_id ? Number(form.elements.split_id.value) : null,
      architecture: { name: architecture, ...readFields(architectureFields) },
      training: readFields(trainingFields),
    };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      let created;
      if (kind() === "tournament") {
        const chosen = [...solverBoxes.querySelectorAll("input:checked")].map((i) => i.value);
        created = await api.createTournament({ base: { ...base, solver: { name: chosen[0] || "adam" } },
          solvers: chosen, ...(name ? { name } : {}), ...readFields(tournamentFields) });
      } else {
        let space;
        try {
          space = JSON.parse(spaceText.value);
        } catch (error) {
          showErrors(form, [{ loc: ["body", "space"], msg: `not JSON: ${error.message}` }]);
          return;
        }
        const v = readFields(searchFields);
        created = await api.createStudy({
          name, base: { ...base, solver: { name: form.elements["base-solver"].value } }, space,
          objective: { metric: v.metric, mode: v.mode }, strategy: v.strategy, pruner: { name: v.name },
          budget: { max_trials: v.max_trials, parallel: v.parallel }, seed: v.seed,
        });
      }
      location.hash = `#/studies/${created.id}`;
    } catch (error) {
      if (!(error instanceof api.ApiError) || error instanceof api.SignedOut) throw error;
      showErrors(form, untagged(error.detail, { architecture }));
    } finally {
      button.disabled = false;
    }
  });

  root.replaceChildren(h("h1", {}, "New study"), form);
}
