// Form fields rendered from JSON Schema (the catalogs' `hyperparameters`, the api's OpenAPI
// components), read back into a request body, and the api's 422 errors shown beside them.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

// {"anyOf": [X, {"type": "null"}]} is X that may be left empty.
function unwrap(schema) {
  if (schema.anyOf) {
    const inner = schema.anyOf.filter((s) => s.type !== "null");
    if (inner.length === 1) return { ...schema, ...inner[0], anyOf: undefined, nullable: inner.length < schema.anyOf.length };
  }
  return schema;
}

function boundsText(s) {
  const parts = [];
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) parts.push(`< ${s.exclusiveMaximum}`);
  return parts.join(", ");
}

function numberInput(s, value, attrs = {}) {
  return h("input", {
    type: "number", step: s.type === "integer" ? "1" : "any",
    min: s.minimum ?? s.exclusiveMinimum, max: s.maximum ?? s.exclusiveMaximum,
    value: value ?? "", ...attrs,
  });
}

function control(key, s, value) {
  const derived = s["x-derived-from"];
  if (s.enum) {
    const options = s.nullable ? [h("option", { value: "" }, "(none)")] : [];
    for (const choice of s.enum) options.push(h("option", { value: choice, selected: choice === value }, String(choice)));
    return h("select", { name: key, dataset: { kind: "enum" } }, options);
  }
  if (s.type === "boolean") return h("input", { type: "checkbox", name: key, checked: Boolean(value), dataset: { kind: "boolean" } });
  if (s.type === "array" && s.minItems && s.minItems === s.maxItems) {
    const items = unwrap(s.items || {});
    return h("span", { class: "tuple", dataset: { kind: "tuple", name: key } },
      Array.from({ length: s.minItems }, (_, i) => numberInput(items, value ? value[i] : "", {
        name: `${key}.${i}`, "aria-label": `${key}[${i}]`,
      })));
  }
  if (s.type === "array") {
    return h("input", {
      type: "text", name: key, value: value ? value.join(", ") : "", dataset: { kind: "list" },
      placeholder: derived ? `derived from ${derived}` : "comma-separated",
    });
  }
  if (s.type === "integer" || s.type === "number") {
    return numberInput(s, value, {
      name: key, dataset: { kind: s.type }, placeholder: derived ? `derived from ${derived}` : s.nullable ? "none" : "",
    });
  }
  if (s.$ref || s.type === "object") {
    // a nested section (training.early_stopping, training.range_test): its JSON, empty for none
    return h("textarea", {
      name: key, rows: 2, dataset: { kind: "json" }, placeholder: s.nullable ? "none (JSON object to set it)" : "JSON object",
    }, value === null || value === undefined ? "" : JSON.stringify(value));
  }
  return h("input", { type: "text", name: key, value: value ?? "", dataset: { kind: "string" } });
}

// JSON text that does not parse goes to the api as it is, so the api names the problem.
function parseJson(text) {
  try { return JSON.parse(text); } catch { return text; }
}

// One labelled field; `path` ("solver.base_lr") is where the api's errors for it land.
export function field(path, key, rawSchema, value, label = key) {
  const s = unwrap(rawSchema);
  const input = control(key, s, value === undefined ? s.default : value);
  const hint = [s.description, boundsText(s)].filter(Boolean).join(" · ");
  return h("div", { class: "field", dataset: { field: path, nullable: s.nullable ? "1" : "", derived: s["x-derived-from"] || "" } },
    h("label", {}, h("span", { class: "field-name" }, label), input),
    hint ? h("small", { class: "hint" }, hint) : null,
    h("p", { class: "field-error", role: "alert" }));
}

// Fields for every property of an object schema (those in `skip` left out), in schema order.
export function fieldsFor(section, schema, values = {}, { skip = [] } = {}) {
  return Object.entries(schema.properties || {})
    .filter(([key]) => !skip.includes(key))
    .map(([key, s]) => field(`${section}.${key}`, key, s, values[key]));
}

// Text that is not a number goes to the api as it is, so the api names the problem.
function parseNumber(text) {
  const n = Number(text);
  return text.trim() === "" || Number.isNaN(n) ? text : n;
}

// The values of the fields inside `container` as an object.  An empty derived field is left out
// (the api derives it), an empty nullable one is null, any other empty one is left out so the
// api's default (or its "Field required") applies.
export function readFields(container) {
  const out = {};
  for (const el of container.querySelectorAll(".field")) {
    const name = el.dataset.field.split(".").pop();
    const tuple = el.querySelector("[data-kind=tuple]");
    const input = tuple || el.querySelector("[name]");
    const kind = input.dataset.kind;
    let value;
    if (kind === "boolean") value = input.checked;
    else if (kind === "tuple") value = [...tuple.querySelectorAll("input")].map((i) => parseNumber(i.value));
    else {
      const text = input.value.trim();
      if (text === "") {
        if (el.dataset.derived) continue;
        if (el.dataset.nullable) { out[name] = null; continue; }
        continue;
      }
      if (kind === "integer" || kind === "number") value = parseNumber(text);
      else if (kind === "list") value = text.split(",").map((t) => parseNumber(t.trim()));
      else if (kind === "json") value = parseJson(text);
      else value = text;
    }
    out[name] = value;
  }
  return out;
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
  const box = form.querySelector(".form-errors");
  if (box) box.replaceChildren();
}

// Puts each error of a 422 beside its field: the loc ["body", "solver", "adam", "betas", 1] is
// the field "solver.betas" (the union's tag "adam" is dropped), the longest prefix that names a
// field wins, and what names none goes to the form's error box.
export function showErrors(form, detail, tags = {}) {
  const items = typeof detail === "string" ? [{ loc: [], msg: detail }] : detail;
  const box = form.querySelector(".form-errors");
  for (const { loc, msg } of items) {
    const path = loc[0] === "body" ? loc.slice(1) : loc.slice();
    if (path.length > 1 && tags[path[0]] !== undefined && path[1] === tags[path[0]]) path.splice(1, 1);
    let target = null;
    for (let n = path.length; n > 0 && !target; n--) {
      target = form.querySelector(`.field[data-field="${CSS.escape(path.slice(0, n).join("."))}"]`);
    }
    if (target) {
      target.classList.add("invalid");
      const where = path.length > 2 && typeof path[path.length - 1] === "number" ? `[${path[path.length - 1]}] ` : "";
      const error = target.querySelector(".field-error");
      error.textContent = [error.textContent, where + msg].filter(Boolean).join("; ");
    } else if (box) {
      box.append(h("p", {}, `${path.join(".") || "request"}: ${msg}`));
    }
  }
  const first = form.querySelector(".field.invalid, .form-errors p");
  if (first) first.scrollIntoView({ block: "center" });
}
