// A run's summary card: each metric's latest and best value (best by the direction the api
// sends with every series, `higher_is_better`), how long it has run and, while it runs, about
// how long it has left.

import { formatNumber } from "./charts.js";
import { h } from "./forms.js";

// The api's times are ISO 8601 in UTC; one without a zone is read as UTC too, not local time.
const parseTime = (text) => Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const [hours, minutes, secs] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  if (hours) return `${hours}h ${String(minutes).padStart(2, "0")}m`;
  if (minutes) return `${minutes}m ${String(secs).padStart(2, "0")}s`;
  return `${secs}s`;
}

// Seconds run (to finished_at, or to `now` while live) and, for a live run with some progress,
// the seconds left at the pace so far; null before a worker took it.
export function timing(experiment, now = Date.now()) {
  if (!experiment.started_at) return null;
  const finished = Boolean(experiment.finished_at);
  const end = finished ? parseTime(experiment.finished_at) : now;
  const elapsed = Math.max(0, (end - parseTime(experiment.started_at)) / 1000);
  const p = experiment.progress;
  const remaining = !finished && p > 0 && p < 1 ? (elapsed * (1 - p)) / p : null;
  return { elapsed, remaining, finished };
}

// Each series' latest finite point and its best one (none for a diagnostic: lr, grad_norm, timings).
export function latestAndBest(series) {
  return Object.entries(series).sort(([a], [b]) => a.localeCompare(b)).map(([name, s]) => {
    let latest = null;
    let best = null;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      latest = { value: v, step: s.steps[i] };
      if (!best || (s.higher_is_better ? v > best.value : v < best.value)) best = { value: v, step: s.steps[i] };
    });
    return { name, higher: s.higher_is_better, diagnostic: Boolean(s.diagnostic), latest, best: s.diagnostic ? null : best };
  }).filter((row) => row.latest);
}

function timeFacts(experiment, now) {
  const t = timing(experiment, now);
  if (!t) return [["elapsed", "not started"]];
  if (t.finished) return [["duration", formatDuration(t.elapsed)]];
  return [["elapsed", formatDuration(t.elapsed)], ["ETA", t.remaining === null ? "–" : `~${formatDuration(t.remaining)} left`]];
}

export function summaryCard(experiment, series, now = Date.now()) {
  const rows = latestAndBest(series);
  const facts = timeFacts(experiment, now);
  return h("div", { class: "card", id: "run-summary" },
    h("h2", {}, "Summary"),
    h("dl", { class: "facts", id: "run-timing" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { fact: k } }, v)])),
    rows.length ? h("table", { class: "list summary" },
      h("thead", {}, h("tr", {}, h("th", {}, "metric"), h("th", {}, "latest"), h("th", {}, "best"))),
      h("tbody", {}, rows.map((r) => h("tr", { dataset: { metric: r.name } },
        h("th", {}, r.diagnostic ? r.name : `${r.name} ${r.higher ? "↑" : "↓"}`),
        h("td", { class: "num", dataset: { kind: "latest" }, title: `at step ${r.latest.step}` }, formatNumber(r.latest.value)),
        r.best ? h("td", { class: "num", dataset: { kind: "best" }, title: `at step ${r.best.step}` }, formatNumber(r.best.value))
          : h("td", { class: "num muted", dataset: { kind: "best" }, title: "a diagnostic has no best" }, "–"))))) : null);
}
