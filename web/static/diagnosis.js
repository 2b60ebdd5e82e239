// A run's convergence diagnosis (GET /experiments/{id}/diagnosis): what the api's rules see in
// its metrics, each finding with its evidence and what to try, or that no rule fired.  The page
// asks again as epochs land (at most once per REFRESH_MS); the rules and their thresholds are
// the api's (docs/diagnosis.md), nothing here judges a run.

import * as api from "./api.js";
import { h } from "./forms.js";

const REFRESH_MS = 2000;

// A plain GET of the diagnosis (cookie session; a GET needs no CSRF token).
export async function getDiagnosis(id) {
  const response = await fetch(`${api.API}/experiments/${id}/diagnosis`);
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new api.ApiError(response.status, payload ? payload.detail : response.statusText);
  return payload;
}

// The rule names that fired, with their epochs ("overfitting@7"); "ok" when none did, "–" before
// the first epoch ends.
export function shortDiagnosis(diagnosis) {
  if (!diagnosis || !diagnosis.epochs) return "–";
  return diagnosis.findings.map((f) => `${f.rule}@${f.epoch}`).join(", ") || "ok";
}

export function diagnosisCard(diagnosis) {
  const findings = diagnosis.findings;
  const epochs = diagnosis.epochs;
  let body;
  if (!epochs) body = h("p", { class: "muted", id: "diagnosis-none" }, "No finished epoch yet.");
  else if (!findings.length) {
    body = h("p", { id: "diagnosis-ok" }, `No problems seen in ${epochs} epoch${epochs === 1 ? "" : "s"}.`);
  } else {
    body = h("ul", { class: "findings" }, findings.map((f) => h("li", { class: `finding ${f.severity}`, dataset: { rule: f.rule, epoch: String(f.epoch) } },
      h("strong", {}, f.rule.replaceAll("_", " ")), ` at epoch ${f.epoch} `, h("span", { class: "severity" }, f.severity),
      h("p", { class: "evidence" }, f.message),
      h("p", { class: "suggestion" }, `Try: ${f.suggestion}`))));
  }
  return h("div", { class: "card", id: "run-diagnosis", dataset: { epochs: String(epochs) } }, h("h2", {}, "Diagnosis"), body);
}

// The panel of one run: `el` to place, `refresh()` to call as points land (throttled).
export function diagnosisPanel(id) {
  const el = h("div", { id: "run-diagnosis-slot" });
  let timer = null;
  let last = 0;
  const load = async () => {
    timer = null;
    last = Date.now();
    try {
      el.replaceChildren(diagnosisCard(await getDiagnosis(id)));
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      el.replaceChildren(h("p", { class: "muted" }, `Diagnosis unavailable: ${error.message}`));
    }
  };
  const refresh = () => { timer ??= setTimeout(load, Math.max(0, last + REFRESH_MS - Date.now())); };
  return { el, load, refresh, destroy: () => clearTimeout(timer) };
}
