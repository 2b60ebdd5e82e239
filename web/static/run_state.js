// What a run's page says where it has no curves to show, or why they stopped: a queued run's
// place in its queue and why it waits (GET /queue), a running run that has not reported a point
// yet, a failed run's steps before its error.

import { h } from "./forms.js";

// `waiting`: the run's entry of GET /queue's `waiting` (null when the api did not list it).
export function stateNotice(experiment, hasPoints, waiting = null) {
  const e = experiment;
  const note = (state, ...text) => h("p", { class: "notice", id: "run-state", dataset: { state } }, ...text);
  const epochs = e.spec?.training?.epochs ?? "?";
  if (e.status === "queued") {
    if (!waiting) return note("queued", "Queued: waiting for a worker to take it.");
    return note("queued", h("strong", {}, `Queued, #${waiting.position} on the ${waiting.queue} queue`),
      ` (waiting ${Math.round(waiting.waited_s)} s): `, h("span", { class: "reason" }, waiting.reason));
  }
  if (e.status === "running" && !hasPoints) {
    const where = [e.worker_host, e.device].filter(Boolean).join(" on ");
    return note("starting", "Starting", where ? ` on ${where}` : "", ": the first points appear once training reports them.");
  }
  if (e.status === "failed") {
    return note("failed", `Failed after ${e.step} steps (epoch ${e.epoch} of ${epochs})`,
      hasPoints ? "; the curves show what it recorded." : ", before it recorded any metric.");
  }
  if (e.status === "cancelled" && !hasPoints) return note("cancelled", "Cancelled before it recorded any metric.");
  if (e.status === "succeeded" && !hasPoints) return note("empty", "It finished without recording any metric.");
  return null;
}
