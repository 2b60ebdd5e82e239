// One study (#/studies/ID): what it searches and how, cancel while it runs, its trials best
// first, the best trial, the objective over the trials (best so far drawn through them), the
// parameters against the objective in parallel coordinates, each parameter's importance, and
// for a solver tournament the sensitivity map: the objective against the learning rate, one
// line per solver.  Polled while it runs.
//
// The charts are SVG drawn here; every mark carries data attributes (data-series, data-points,
// data-trial, data-status) so tests read what is drawn.

import * as api from "./api.js";
import { color, formatNumber } from "./charts.js";
import { statusBadge } from "./experiments.js";
import { h } from "./forms.js";
import { studyBadge, trialsDone } from "./studies.js";

const POLL_MS = 1500;
const TERMINAL = ["succeeded", "failed", "cancelled", "pruned"];
const SVG_NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 300;
const M = { left: 60, right: 18, top: 14, bottom: 42 };
const LR = "solver.base_lr";
const SOLVER = "solver.name";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const finite = (v) => typeof v === "number" && Number.isFinite(v);
const show = (v) => (typeof v === "number" ? formatNumber(v) : String(v));

function niceStep(span, count) {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return power * [1, 2, 5, 10].find((m) => m * power >= raw);
}

// A scale from the values' range (padded 5%) onto [r0, r1], log10 when `log`, with ticks.
function scale(values, [r0, r1], log = false) {
  const t = log ? Math.log10 : (v) => v;
  const usable = values.filter((v) => finite(v) && (!log || v > 0)).map(t);
  let a = usable.length ? Math.min(...usable) : 0;
  let b = usable.length ? Math.max(...usable) : 1;
  if (a === b) {
    const half = log ? 0.5 : Math.abs(a) * 0.1 || 1;
    a -= half; b += half;
  } else {
    const pad = (b - a) * 0.05;
    a -= pad; b += pad;
  }
  const f = (v) => r0 + ((t(v) - a) / (b - a)) * (r1 - r0);
  f.ticks = () => {
    if (log) {
      const out = [];
      for (let e = Math.ceil(a); e <= Math.floor(b); e++) out.push(10 ** e);
      if (out.length < 2) for (const m of [2, 5]) for (let e = Math.floor(a); e <= Math.ceil(b); e++) {
        const v = m * 10 ** e;
        if (Math.log10(v) >= a && Math.log10(v) <= b) out.push(v);
      }
      return out.sort((x, y) => x - y);
    }
    const step = niceStep(b - a, 5);
    const out = [];
    for (let v = Math.ceil(a / step) * step; v <= b + 1e-12; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  };
  f.log = log;
  return f;
}

// Losses spanning more than two decades read better on a log scale.
const logworthy = (values) => {
  const pos = values.filter((v) => finite(v) && v > 0);
  return pos.length === values.filter(finite).length && pos.length > 1 && Math.max(...pos) / Math.min(...pos) > 100;
};

// Axes, grid lines and labels of an x/y plot in the w×h box; `xTicks`: [value, text] pairs.
function frame(x, y, xLabel, yLabel, xTicks, { w = W, h: height = H } = {}) {
  const bottom = height - M.bottom;
  return s("g", { class: "frame" },
    y.ticks().map((v) => s("g", {},
      s("line", { x1: M.left, x2: w - M.right, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, show(v)))),
    xTicks.map(([v, text]) => s("g", {},
      s("line", { x1: x(v), x2: x(v), y1: bottom, y2: bottom + 4, class: "axis" }),
      s("text", { x: x(v), y: bottom + 16, "text-anchor": "middle" }, text))),
    s("line", { x1: M.left, x2: w - M.right, y1: bottom, y2: bottom, class: "axis" }),
    s("line", { x1: M.left, x2: M.left, y1: M.top, y2: bottom, class: "axis" }),
    s("text", { x: (M.left + w - M.right) / 2, y: height - 6, "text-anchor": "middle", class: "label" }, xLabel),
    s("text", { x: 12, y: (M.top + bottom) / 2, "text-anchor": "middle", class: "label",
      transform: `rotate(-90 12 ${(M.top + bottom) / 2})` }, yLabel));
}

const svgBox = (id, { w = W, h: height = H } = {}, ...children) =>
  s("svg", { id, class: "plot", viewBox: `0 0 ${w} ${height}`, preserveAspectRatio: "xMidYMid meet", role: "img" }, ...children);

// Every parameter the space defines (conditional ones included), in the space's order; a path
// is log-scaled when any of its definitions says so.
export function paramDefs(space, out = {}) {
  for (const [path, p] of Object.entries(space || {})) {
    out[path] = out[path] ? { ...out[path], log: out[path].log || p.log } : { ...p };
    for (const sub of Object.values(p.when || {})) paramDefs(sub, out);
  }
  return out;
}

// The trials in the order a reader wants them: the succeeded ones by value (best first), then
// the rest with a value, then those without; ties by number.
export function bestFirst(trials, mode) {
  const sign = mode === "max" ? -1 : 1;
  const rank = (t) => (t.status === "succeeded" && finite(t.value) ? 0 : finite(t.value) ? 1 : 2);
  return [...trials].sort((a, b) => rank(a) - rank(b)
    || (rank(a) < 2 ? sign * (a.value - b.value) : 0) || a.number - b.number);
}

// Red (worst) through amber to green (best); `t` in [0, 1], 1 the best.
function valueColor(t) {
  const stops = [[220, 38, 38], [234, 179, 8], [22, 163, 74]];
  const k = Math.max(0, Math.min(1, t)) * 2;
  const i = Math.min(1, Math.floor(k));
  const f = k - i;
  return `rgb(${stops[i].map((c, j) => Math.round(c + (stops[i + 1][j] - c) * f)).join(",")})`;
}

function marker(cx, cy, trial, fill, extra = {}) {
  const title = s("title", {}, `trial ${trial.number}: ${trial.label} · ${trial.status} · ${show(trial.value ?? "no value")}`);
  const data = { trial: trial.number, status: trial.status, value: trial.value ?? "" };
  if (trial.status === "failed" || trial.status === "cancelled") {
    const d = 4;
    return s("path", { d: `M${cx - d},${cy - d}L${cx + d},${cy + d}M${cx - d},${cy + d}L${cx + d},${cy - d}`,
      class: `marker cross status-${trial.status}`, stroke: fill, dataset: data, ...extra }, title);
  }
  const hollow = trial.status !== "succeeded";
  return s("circle", { cx, cy, r: 4.5, class: `marker${hollow ? " hollow" : ""}`, stroke: fill,
    fill: hollow ? "#fff" : fill, dataset: data, ...extra }, title);
}

// (c) The objective of each trial by its number: succeeded filled, pruned and running hollow,
// failed and cancelled crossed (on the bottom edge when they have no value), the best so far a
// step line through the succeeded ones.
function historyChart(study) {
  const { metric, mode } = study.spec.objective;
  const trials = study.trials;
  const values = trials.map((t) => t.value).filter(finite);
  const x = scale(trials.map((t) => t.number), [M.left, W - M.right]);
  const y = scale(values, [H - M.bottom, M.top], mode === "min" && logworthy(values));
  const bottom = H - M.bottom;
  let best = null;
  const steps = [];
  for (const t of [...trials].sort((a, b) => a.number - b.number)) {
    if (t.status !== "succeeded" || !finite(t.value)) continue;
    if (best === null || (mode === "max" ? t.value > best : t.value < best)) best = t.value;
    steps.push([t.number, best]);
  }
  const path = steps.map(([n, v], i) => (i ? `H${x(n)}V${y(v)}` : `M${x(n)},${y(v)}`)).join("");
  const xTicks = x.ticks().filter(Number.isInteger).map((v) => [v, String(v)]);
  return svgBox("study-history", {},
    frame(x, y, "trial", `${metric} (${mode})`, xTicks),
    steps.length ? s("path", { d: steps.length ? `${path}H${x(Math.max(...trials.map((t) => t.number)))}` : "",
      class: "best-so-far", dataset: { points: steps.length } }) : null,
    trials.map((t) => marker(x(t.number), finite(t.value) ? y(t.value) : bottom - 2, t,
      TERMINAL.includes(t.status) ? color(0) : "#94a3b8")));
}

// (d) Parallel coordinates: an axis per parameter (log for the space's log ones, categories
// evenly spaced) and the objective's, best at the top; one polyline per finished trial with a
// value, coloured from worst to best.
function parallelChart(study, defs) {
  const { metric, mode } = study.spec.objective;
  const finished = study.trials.filter((t) => TERMINAL.includes(t.status) && finite(t.value));
  const paths = [...Object.keys(defs), ...new Set(study.trials.flatMap((t) => Object.keys(t.params)))]
    .filter((p, i, all) => all.indexOf(p) === i);
  const top = M.top + 6;
  const bottom = H - M.bottom;
  const xs = (i) => M.left + ((W - M.left - 70) * i) / Math.max(1, paths.length); // 70: the objective's labels
  const axes = paths.map((path) => {
    const seen = study.trials.map((t) => t.params[path]).filter((v) => v !== undefined);
    const def = defs[path] || {};
    const categorical = def.type === "categorical" || seen.some((v) => typeof v !== "number");
    if (categorical) {
      const cats = (def.values || []).concat(seen).filter((v, i, all) => all.findIndex((w) => w === v) === i);
      const at = (v) => bottom - ((cats.indexOf(v) + 0.5) / cats.length) * (bottom - top);
      return { path, at, ticks: cats.map((v) => [at(v), show(v)]), log: false };
    }
    const y = scale(seen, [bottom, top], Boolean(def.log));
    return { path, at: y, ticks: y.ticks().map((v) => [y(v), show(v)]), log: Boolean(def.log) };
  });
  const values = finished.map((t) => t.value);
  const objective = scale(values, mode === "max" ? [bottom, top] : [top, bottom]);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const goodness = (v) => (hi === lo ? 1 : mode === "max" ? (v - lo) / (hi - lo) : (hi - v) / (hi - lo));
  const axis = (i, name, ticks, extra = {}) => s("g", { class: "pc-axis", dataset: { param: name, ...extra } },
    s("line", { x1: xs(i), x2: xs(i), y1: top, y2: bottom, class: "axis" }),
    ticks.map(([y, text]) => s("text", { x: xs(i) + 5, y: y + 4 }, text)),
    s("text", { x: xs(i), y: H - 18, "text-anchor": "middle", class: "label" }, name));
  const lines = [...finished].sort((a, b) => goodness(a.value) - goodness(b.value)).map((t) => {
    const points = axes.map((a, i) => (t.params[a.path] === undefined ? null : `${xs(i)},${a.at(t.params[a.path])}`))
      .filter(Boolean);
    points.push(`${xs(axes.length)},${objective(t.value)}`);
    return s("polyline", { points: points.join(" "), class: "pc-line", stroke: valueColor(goodness(t.value)),
      dataset: { trial: t.number, value: t.value } }, s("title", {}, `trial ${t.number}: ${t.label} → ${show(t.value)}`));
  });
  const svg = svgBox("study-parallel", {},
    s("g", { class: "frame" },
      axes.map((a, i) => axis(i, a.path, a.ticks, { log: a.log ? "1" : "" })),
      axis(axes.length, metric, objective.ticks().map((v) => [objective(v), show(v)]), { objective: "1" })),
    s("g", { class: "lines" }, lines));
  svg.dataset.lines = String(lines.length);
  return svg;
}

// (e) Each parameter's share of the objective's variation, largest first.
function importanceBars(importance) {
  const entries = Object.entries(importance).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return h("p", { class: "muted" }, "Shown once enough trials have finished.");
  return h("div", { class: "bars", id: "study-importance" }, entries.map(([param, share]) =>
    h("div", { class: "bar-row", dataset: { param, share: String(share) } },
      h("span", { class: "bar-name" }, param),
      h("span", { class: "bar" }, h("span", { style: `width:${(share * 100).toFixed(1)}%` })),
      h("span", { class: "bar-value" }, `${(share * 100).toFixed(1)}%`))));
}

// (f) The tournament's sensitivity map: the objective against base LR on a log axis, one line
// per solver through its trials with a value; pruned ones hollow at their last value.
function sensitivityMap(study, defs) {
  const { metric, mode } = study.spec.objective;
  const withValue = study.trials.filter((t) => finite(t.value) && finite(t.params[LR]));
  const names = [...(defs[SOLVER]?.values || []), ...study.trials.map((t) => t.params[SOLVER])]
    .filter((v, i, all) => v !== undefined && all.indexOf(v) === i);
  const values = withValue.map((t) => t.value);
  const box = { w: 960, h: 340 };
  const x = scale(study.trials.map((t) => t.params[LR]), [M.left, box.w - M.right], true);
  const y = scale(values, [box.h - M.bottom, M.top], mode === "min" && logworthy(values));
  const series = names.map((name, i) => {
    const mine = withValue.filter((t) => t.params[SOLVER] === name).sort((a, b) => a.params[LR] - b.params[LR]);
    const stroke = color(i);
    return s("g", { class: "series", dataset: { series: name, points: String(mine.length) } },
      mine.length > 1 ? s("polyline", { class: "series-line", stroke,
        points: mine.map((t) => `${x(t.params[LR])},${y(t.value)}`).join(" ") }) : null,
      mine.map((t) => marker(x(t.params[LR]), y(t.value), t, stroke)));
  });
  const svg = svgBox("sensitivity-map", box,
    frame(x, y, "base LR (log)", `${metric} (${mode})`, x.ticks().map((v) => [v, show(v)]), box), series);
  svg.dataset.series = String(names.length);
  const legend = h("ul", { class: "legend", id: "sensitivity-legend" },
    names.map((name, i) => h("li", { dataset: { series: name } }, h("span", { class: "swatch", style: `background:${color(i)}` }), name)),
    h("li", { class: "muted" }, "○ pruned or running: its last value · × failed"));
  return [svg, legend];
}

function trialsTable(study) {
  const best = study.best?.number;
  return h("table", { class: "list", id: "trials-table" },
    h("thead", {}, h("tr", {}, ["#", "experiment", "status", "trial", study.spec.objective.metric, "epoch"].map((t) => h("th", {}, t)))),
    h("tbody", {}, bestFirst(study.trials, study.spec.objective.mode).map((t) =>
      h("tr", { class: t.number === best ? "best" : null, dataset: { number: t.number, experiment: t.experiment_id } },
        h("td", { class: "num" }, String(t.number)),
        h("td", {}, h("a", { href: `#/experiments/${t.experiment_id}` }, `#${t.experiment_id}`)),
        h("td", {}, statusBadge(t.status)),
        h("td", { class: "label" }, t.label),
        h("td", { class: "num value" }, formatNumber(t.value)),
        h("td", { class: "num" }, String(t.epoch))))));
}

function bestCard(study) {
  const t = study.best;
  if (!t) return h("div", { class: "card", id: "best-trial" }, h("h2", {}, "Best trial"), h("p", { class: "muted" }, "None has succeeded yet."));
  return h("div", { class: "card", id: "best-trial", dataset: { number: t.number } }, h("h2", {}, "Best trial"),
    h("p", { class: "best-value" }, h("strong", {}, formatNumber(t.value)), ` ${study.spec.objective.metric} · `,
      h("a", { href: `#/experiments/${t.experiment_id}` }, `trial ${t.number} (#${t.experiment_id})`), ` · ${t.epoch} epochs`),
    h("dl", { class: "facts" }, Object.entries(t.params).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, show(v))])));
}

function pruner(p) {
  if (!p || p.name === "none") return "none";
  const within = p.group_by ? `, within each ${p.group_by}` : "";
  if (p.name === "asha") return `asha (min ${p.min_resource} epoch, ×${p.reduction_factor}${within})`;
  return `median (after ${p.n_startup_trials} trials, from epoch ${p.n_warmup_steps}${within})`;
}

function header(study, onCancel) {
  const spec = study.spec;
  const o = spec.objective;
  const b = spec.budget;
  const rows = [
    ["kind", study.kind],
    ["objective", `${o.metric} (${o.mode === "max" ? "maximise" : "minimise"}, ${o.use} epoch)`],
    ["strategy", spec.strategy],
    ["pruner", pruner(spec.pruner)],
    ["budget", `${b.max_trials} trials, ${b.parallel} at once${b.max_minutes ? `, ${b.max_minutes} min` : ""}`],
    ["split", `#${study.split_id}`],
    ["created", new Date(study.created_at).toLocaleString()],
    ["finished", study.finished_at ? new Date(study.finished_at).toLocaleString() : "–"],
  ];
  const counts = Object.entries(study.counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(" · ");
  return h("div", { id: "study-header" },
    h("div", { class: "toolbar" }, h("h1", {}, `Study #${study.id} ${study.name}`), studyBadge(study.status),
      study.status === "running" ? h("button", { id: "cancel-study", onclick: onCancel }, "Cancel") : null),
    spec.description ? h("p", { id: "study-description" }, spec.description) : null,
    study.note ? h("p", { class: "notice", id: "study-note" }, study.note) : null,
    h("p", { class: "muted", id: "study-counts" }, `${trialsDone(study)} of ${study.max_trials} trials done`, counts ? ` (${counts})` : ""),
    h("div", { class: "card" }, h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))));
}

export async function render(root, params, id) {
  let study = await api.getStudy(id);
  let drawn = "";
  let timer = null;
  let closed = false;

  async function cancel() {
    try {
      study = await api.cancelStudy(id);
    } catch (error) {
      if (!(error instanceof api.ApiError) || error instanceof api.SignedOut) throw error;
      study = await api.getStudy(id); // it ended first (409): show how
    }
    draw();
  }

  function draw() {
    const text = JSON.stringify(study);
    if (text === drawn) return;
    drawn = text;
    const defs = paramDefs(study.spec.space);
    const card = (title, id, ...body) => h("div", { class: "card", id }, h("h2", {}, title), ...body);
    const tournament = study.kind === "tournament" || (defs[SOLVER] && defs[LR]);
    root.replaceChildren(
      header(study, cancel),
      h("div", { class: "two" }, bestCard(study), card("Parameter importance", "importance-card", importanceBars(study.importance))),
      tournament ? card("Sensitivity: objective against learning rate", "sensitivity-card", ...sensitivityMap(study, defs)) : null,
      h("div", { class: "two" },
        card("Objective by trial", "history-card", historyChart(study),
          h("p", { class: "muted" }, "● succeeded · ○ pruned or running · × failed or cancelled · line: best so far")),
        card("Parallel coordinates", "parallel-card", parallelChart(study, defs))),
      card("Trials", "trials-card", h("div", { class: "scroll" }, trialsTable(study))));
    root.dataset.status = study.status;
    if (study.status !== "running") root.dataset.finished = "1";
  }

  async function poll() {
    timer = null;
    try {
      study = await api.getStudy(id);
    } catch (error) {
      if (error instanceof api.SignedOut) return; // on the way to #/login
      // anything else (the api restarting, a network hiccup): ask again at the next poll
    }
    if (closed) return;
    draw();
    if (study.status === "running") timer = setTimeout(poll, POLL_MS);
  }

  draw();
  if (study.status === "running") timer = setTimeout(poll, POLL_MS);
  return () => {
    closed = true;
    clearTimeout(timer);
  };
}
