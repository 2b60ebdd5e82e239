// Races (#/races): the form that starts one (a test function, a start, a number of steps and up
// to eight racers, each a solver with its hyperparameters and an optional scheduler, rendered
// from the catalogs as the new-experiment form is), and the recent races.
//
// A race's spec travels in the URL as base64url JSON: #/races?run=SPEC starts that race again
// at once (the link a race page shares), #/races?spec=SPEC opens the form filled with it.

import * as api from "./api.js";
import { clearErrors, field, fieldsFor, h, readFields, showErrors } from "./forms.js";
import * as session from "./session.js";

const MAX_RACERS = 8;
const SOLVER_FIRST = ["base_lr", "weight_decay"];
const DEFAULT_RACE = {
  function: "rosenbrock", steps: 500,
  racers: [
    { solver: { name: "sgd", base_lr: 0.001, momentum: 0.9 } },
    { solver: { name: "adam", base_lr: 0.05 } },
    { solver: { name: "rmsprop", base_lr: 0.01 } },
    { solver: { name: "lbfgs", base_lr: 1 } },
  ],
};

export function encodeSpec(spec) {
  const bytes = new TextEncoder().encode(JSON.stringify(spec));
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeSpec(encoded) {
  const text = atob(encoded.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0))));
}

// `#/races?run=…` (run it again) or `#/races?spec=…` (the form, filled in) for a race's spec.
export function raceLink(spec, mode) {
  const { function: fn, start, steps, racers } = spec;
  return `#/races?${mode}=${encodeSpec({ function: fn, start, steps, racers })}`;
}

function select(name, options, selected, attrs = {}) {
  return h("select", { name, ...attrs },
    options.map(([value, text]) => h("option", { value, selected: String(value) === String(selected) }, text)));
}

// One racer's fieldset; `read()` gives its part of the body, `names` its solver and scheduler.
function racerBox(index, racer, catalogs, onRemove) {
  const { solverByName, schedulerByName, solvers, schedulers } = catalogs;
  const path = `racers.${index}`;
  const solverFields = h("div", { class: "grid" });
  const schedulerFields = h("div", { class: "grid" });
  const drawSolver = (name, values = {}) => {
    const schema = solverByName[name].experiment_fields;
    const first = SOLVER_FIRST.filter((k) => k in schema.properties).map((k) =>
      field(`${path}.solver.${k}`, k, schema.properties[k], values[k], k === "base_lr" ? "base LR" : k.replace("_", " ")));
    solverFields.replaceChildren(...first, ...fieldsFor(`${path}.solver`, schema, values, { skip: SOLVER_FIRST }));
  };
  const drawScheduler = (name, values = {}) => {
    if (!name) { schedulerFields.replaceChildren(); return; }
    schedulerFields.replaceChildren(...fieldsFor(`${path}.scheduler`, schedulerByName[name].hyperparameters, values));
  };
  const label = field(`${path}.label`, "label", { type: "string", description: "Default: solver and LR." }, racer.label || "");
  const solverName = racer.solver?.name || "adam";
  const schedulerName = racer.scheduler?.name || "";
  const box = h("fieldset", { class: "card racer", dataset: { index: String(index) } },
    h("legend", {}, `Racer ${index + 1}`),
    h("div", { class: "grid" }, h("div", { class: "racer-label" }, label),
      h("div", { class: "field", dataset: { field: `${path}.solver` } },
        h("label", {}, h("span", { class: "field-name" }, "solver"),
          select("solver-name", solvers.map((s) => [s.name, `${s.name} (${s.family})`]), solverName,
            { onchange: (e) => drawSolver(e.target.value) })),
        h("p", { class: "field-error", role: "alert" })),
      h("div", { class: "field", dataset: { field: `${path}.scheduler` } },
        h("label", {}, h("span", { class: "field-name" }, "scheduler"),
          select("scheduler-name", [["", "none"], ...schedulers.map((s) => [s.name, s.name])], schedulerName,
            { onchange: (e) => drawScheduler(e.target.value) })),
        h("p", { class: "field-error", role: "alert" }))),
    solverFields, schedulerFields,
    h("button", { type: "button", class: "remove-racer", onclick: onRemove }, "Remove"));
  drawSolver(solverName, racer.solver || {});
  drawScheduler(schedulerName, racer.scheduler || {});
  const names = () => ({ solver: box.querySelector("[name=solver-name]").value,
    scheduler: box.querySelector("[name=scheduler-name]").value });
  const read = () => {
    const { solver, scheduler } = names();
    const own = readFields(box.querySelector(".racer-label"));
    return { ...own, solver: { name: solver, ...readFields(solverFields) },
      scheduler: scheduler ? { name: scheduler, ...readFields(schedulerFields) } : null };
  };
  return { box, read, names };
}

// The api's loc ["body", "racers", 0, "solver", "adam", "base_lr"] names the field
// racers.0.solver.base_lr: the union's tag (the racer's solver or scheduler) is dropped.
function untagged(detail, boxes) {
  if (typeof detail === "string") return detail;
  return detail.map(({ loc, msg }) => {
    const path = [...loc];
    if (path[1] === "racers" && ["solver", "scheduler"].includes(path[3]) && boxes[path[2]]
        && path[4] === boxes[path[2]].names()[path[3]]) path.splice(4, 1);
    return { loc: path, msg };
  });
}

function form(functions, catalogs, spec) {
  const fnByName = Object.fromEntries(functions.map((f) => [f.name, f]));
  const chosen = fnByName[spec.function] ? spec.function : "rosenbrock";
  const note = h("p", { class: "entry-note", id: "function-note" });
  const startField = h("div", {});
  const drawFunction = (name, start) => {
    const fn = fnByName[name];
    note.textContent = `f(x, y) = ${fn.formula}. ${fn.note}`;
    startField.replaceChildren(field("start", "start", { type: "array", minItems: 2, maxItems: 2, items: { type: "number" },
      description: `[x, y]; the plot spans x ${fn.bounds[0]}…${fn.bounds[1]}, y ${fn.bounds[2]}…${fn.bounds[3]}` },
    start || fn.start));
  };
  const racersBox = h("div", { id: "racers" });
  let boxes = [];
  const addButton = h("button", { type: "button", id: "add-racer" }, "Add racer");
  const redraw = (racers) => {
    boxes = racers.map((r, i) => racerBox(i, r, catalogs, () => redraw(boxes.map((b) => b.read()).filter((_, k) => k !== i))));
    racersBox.replaceChildren(...boxes.map((b) => b.box));
    addButton.disabled = boxes.length >= MAX_RACERS;
  };
  addButton.addEventListener("click", () => redraw([...boxes.map((b) => b.read()), { solver: { name: "adam" } }]));
  const el = h("form", { id: "new-race", novalidate: true },
    h("section", { class: "card" }, h("h2", {}, "Function and start"),
      h("div", { class: "grid" },
        h("div", { class: "field", dataset: { field: "function" } },
          h("label", {}, h("span", { class: "field-name" }, "function"),
            select("function", functions.map((f) => [f.name, f.title]), chosen,
              { onchange: (e) => drawFunction(e.target.value) })),
          h("p", { class: "field-error", role: "alert" })),
        startField,
        h("div", { id: "steps-field" }, field("steps", "steps", { type: "integer", minimum: 1, maximum: 2000,
          description: "Optimizer steps each racer takes." }, spec.steps ?? 500))),
      note),
    h("section", { class: "card" }, h("h2", {}, "Racers"), racersBox, addButton),
    h("div", { class: "form-errors", role: "alert" }),
    h("button", { type: "submit", class: "primary" }, "Race"));
  drawFunction(chosen, spec.start);
  redraw(spec.racers && spec.racers.length ? spec.racers : DEFAULT_RACE.racers);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(el);
    const top = readFields(el.querySelector("section"));
    const body = { function: el.elements.function.value, start: top.start, steps: top.steps,
      racers: boxes.map((b) => b.read()), project_id: session.project() ?? undefined };
    const button = el.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const created = await api.createRace(body);
      location.hash = `#/races/${created.id}`;
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      showErrors(el, untagged(error.detail, boxes));
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

function recentList(races, functions) {
  if (!races.length) return h("p", { class: "empty" }, "No race yet.");
  const title = Object.fromEntries(functions.map((f) => [f.name, f.title]));
  return h("table", { class: "races" },
    h("thead", {}, h("tr", {}, ["race", "function", "racers", "steps", "status", "asked"].map((t) => h("th", {}, t)))),
    h("tbody", {}, races.map((r) => h("tr", {},
      h("td", {}, h("a", { href: `#/races/${r.id}` }, `#${r.id}`)),
      h("td", {}, title[r.spec.function] || r.spec.function),
      h("td", {}, r.spec.racers.map((x) => x.label).join(", ")),
      h("td", {}, String(r.spec.steps)),
      h("td", {}, r.status),
      h("td", {}, new Date(r.created_at).toLocaleString())))));
}

export async function render(root, params) {
  const run = params.get("run");
  if (run) { // a shared race: run it again at once
    const spec = decodeSpec(run);
    const created = await api.createRace({ ...spec, project_id: session.project() ?? undefined });
    location.replace(`#/races/${created.id}`);
    return;
  }
  const [functions, solvers, schedulers, recent] = await Promise.all([
    api.catalog("races/functions"), api.catalog("solvers"), api.catalog("schedulers"),
    api.listRaces(session.project()),
  ]);
  const raceable = solvers.filter((s) => !s.needs_model); // a race steps two coordinates, not a network
  const catalogs = {
    solvers: raceable, schedulers,
    solverByName: Object.fromEntries(raceable.map((s) => [s.name, s])),
    schedulerByName: Object.fromEntries(schedulers.map((s) => [s.name, s])),
  };
  const spec = params.get("spec") ? decodeSpec(params.get("spec")) : DEFAULT_RACE;
  root.replaceChildren(
    h("h1", {}, "Race solvers on a 2-D function"),
    form(functions.items, catalogs, spec),
    h("section", { class: "card" }, h("h2", {}, "Recent races"), recentList(recent.items, functions.items)));
}
