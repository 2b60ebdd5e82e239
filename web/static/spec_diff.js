// "What differs": the compared runs' specs flattened to dotted keys (`solver.base_lr`), only
// the keys whose values are not the same in every run, one column per run.

import { h } from "./forms.js";

// {"a": {"b": 1}, "c": [1, 2]} → {"a.b": 1, "c": [1, 2]}: objects are walked, anything else
// (lists included) is a value.
export function flatten(value, prefix = "", out = {}) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (!keys.length && prefix) out[prefix] = value;
    for (const key of keys) flatten(value[key], prefix ? `${prefix}.${key}` : key, out);
  } else if (prefix) {
    out[prefix] = value;
  }
  return out;
}

const shown = (v) => (v === undefined ? "–" : JSON.stringify(v));

// The keys (sorted) whose value differs between the specs; a key one spec lacks differs.
export function differingKeys(specs) {
  const flat = specs.map((s) => flatten(s));
  const keys = [...new Set(flat.flatMap(Object.keys))].sort();
  return { flat, keys: keys.filter((k) => new Set(flat.map((f) => shown(f[k]))).size > 1) };
}

export function specDiffTable(experiments) {
  const { flat, keys } = differingKeys(experiments.map((e) => e.spec));
  const body = keys.length
    ? h("div", { class: "scroll" }, h("table", { class: "list", id: "spec-diff" },
      h("thead", {}, h("tr", {}, h("th", {}, "spec key"),
        experiments.map((e) => h("th", { dataset: { id: e.id } }, `#${e.id} ${e.name}`)))),
      h("tbody", {}, keys.map((k) => h("tr", { dataset: { key: k } }, h("th", {}, k),
        flat.map((f, i) => h("td", { dataset: { id: experiments[i].id } }, shown(f[k]))))))))
    : h("p", { class: "muted", id: "spec-diff-none" }, "Their specs are the same.");
  return h("div", { class: "card" }, h("h2", {}, "What differs"), body);
}
