// Studies (#/studies): every study of the project chosen in the header (all the user's when none
// is), newest first, with its trials done out of its budget and the best trial so far.

import * as api from "./api.js";
import { formatNumber } from "./charts.js";
import { h } from "./forms.js";
import * as session from "./session.js";

// Trial statuses that count as done towards a study's budget.
export const DONE = ["succeeded", "failed", "cancelled", "pruned"];

export const studyBadge = (status) => h("span", { class: `status status-${status}` }, status);

export const trialsDone = (study) => DONE.reduce((n, s) => n + (study.counts[s] || 0), 0);

export async function render(root) {
  const page = await api.listStudies({ project_id: session.project(), limit: 100 });
  const rows = page.items.map((s) =>
    h("tr", { dataset: { id: s.id } },
      h("td", { class: "num" }, `#${s.id}`),
      h("td", {}, h("a", { href: `#/studies/${s.id}` }, s.name)),
      h("td", {}, s.kind),
      h("td", {}, studyBadge(s.status)),
      h("td", { class: "num trials", title: Object.entries(s.counts).map(([k, v]) => `${v} ${k}`).join(", ") },
        `${trialsDone(s)} / ${s.max_trials}`),
      h("td", { class: "num best" }, s.best ? formatNumber(s.best.value) : "–"),
      h("td", { class: "best-label" }, s.best ? s.best.label : ""),
      h("td", { class: "muted" }, new Date(s.created_at).toLocaleString())));
  root.replaceChildren(
    h("div", { class: "toolbar" }, h("h1", {}, "Studies"), h("a", { class: "button", href: "#/studies/new" }, "New study")),
    h("p", { class: "muted", id: "studies-count" }, `${page.items.length} of ${page.total} shown`),
    page.items.length
      ? h("table", { class: "list", id: "studies-table" },
        h("thead", {}, h("tr", {}, ["id", "name", "kind", "status", "trials done", "best value", "best trial", "created"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, rows))
      : h("p", { class: "notice" }, "No study yet. ", h("a", { href: "#/studies/new" }, "Start a solver tournament"), "."));
}
