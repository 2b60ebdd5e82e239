// Compare (#/compare?ids=1,2&metric=val/loss&more=train/loss,lr&x=step|epoch|wall&log=1&smooth=0.6):
// one metric overlaid for every selected run, more metrics ticked each in a chart of its own, the
// learning-rate schedules side by side, a table of best and final values with each metric's
// winner marked, each run's convergence diagnosis, and what differs between the runs' specs.

import * as api from "./api.js";
import { color, formatNumber, lineChart, smooth } from "./charts.js";
import { getDiagnosis, shortDiagnosis } from "./diagnosis.js";
import { statusBadge } from "./experiments.js";
import { h } from "./forms.js";
import { specDiffTable } from "./spec_diff.js";

const QUALITY = /^(train|val|test)\/(loss|epoch_loss|accuracy|r2|mse)$/;
const WINNER_BY = "val/loss";
const X_LABELS = { step: "step", epoch: "epoch", wall: "training time (s)" };

const gcd = (a, b) => (b ? gcd(b, a % b) : a);

// x for each step, by epoch or by training time.  A series carries steps only; the per-epoch
// `epoch_time` points sit at each epoch's last step, so their gcd is the steps per epoch and
// their running sum the training time at each epoch's end (eval time excluded).
export function axisFor(experiment, mode) {
  if (mode === "step") return (step) => step;
  const epochs = experiment.series.epoch_time;
  if (!epochs || !epochs.steps.length) return () => null;
  const perEpoch = epochs.steps.reduce(gcd, 0);
  if (mode === "epoch") return (step) => step / perEpoch;
  const finite = epochs.values.filter((v) => v !== null);
  const mean = finite.reduce((a, b) => a + b, 0) / Math.max(1, finite.length);
  const knots = [[0, 0]];
  let seconds = 0;
  epochs.steps.forEach((step, i) => {
    const previous = knots[knots.length - 1][0];
    const missed = Math.max(0, Math.round((step - previous) / perEpoch) - 1); // epochs a downsampled read left out
    seconds += (epochs.values[i] ?? mean) + missed * mean;
    knots.push([step, seconds]);
  });
  const [lastStep, lastSeconds] = knots[knots.length - 1];
  return (step) => {
    if (step >= lastStep) return lastSeconds + ((step - lastStep) * mean) / perEpoch;
    let i = 1;
    while (knots[i][0] < step) i++;
    const [s0, t0] = knots[i - 1];
    const [s1, t1] = knots[i];
    return t0 + ((t1 - t0) * (step - s0)) / (s1 - s0);
  };
}

function lineFor(experiment, name, mode, weight, index) {
  const s = experiment.series[name];
  if (!s) return null;
  const x = axisFor(experiment, mode);
  const xs = s.steps.map(x);
  const keep = xs.map((v) => v !== null);
  return {
    label: `#${experiment.id} ${experiment.name}`, color: color(index),
    xs: xs.filter((_, i) => keep[i]), ys: smooth(s.values, weight).filter((_, i) => keep[i]),
  };
}

// `diagnoses`: each run's GET /experiments/{id}/diagnosis (null where it could not be read).
function summaryTable(data, diagnoses = {}) {
  const names = [...new Set(data.summary.map((r) => r.name))].filter((n) => QUALITY.test(n)).sort();
  const cell = {};
  const higher = {}; // which way each metric improves, as the api says on every summary row
  for (const r of data.summary) {
    cell[`${r.experiment_id} ${r.name}`] = r;
    higher[r.name] = r.higher_is_better;
  }
  // each metric's winners: every run whose best equals the best of all (a tie stars them all)
  const winners = {};
  for (const name of names) {
    const bests = data.experiments.map((e) => cell[`${e.id} ${name}`]?.best_value).filter((v) => v !== null && v !== undefined);
    if (!bests.length) continue;
    const top = higher[name] ? Math.max(...bests) : Math.min(...bests);
    winners[name] = new Set(data.experiments.filter((e) => cell[`${e.id} ${name}`]?.best_value === top).map((e) => e.id));
  }
  const winnerBy = names.includes(WINNER_BY) ? WINNER_BY : names[0];
  const overall = winners[winnerBy]?.size === 1 ? data.experiments.find((e) => winners[winnerBy].has(e.id)) : null;
  const table = h("table", { class: "list summary", id: "compare-summary" },
    h("thead", {},
      h("tr", {}, h("th", { rowspan: 2 }, "experiment"), names.map((n) => h("th", { colspan: 2 }, `${n} ${higher[n] ? "↑" : "↓"}`)),
        h("th", { rowspan: 2 }, "diagnosis")),
      h("tr", {}, names.flatMap(() => [h("th", {}, "best"), h("th", {}, "final")]))),
    h("tbody", {}, data.experiments.map((e) => h("tr", { dataset: { id: e.id } },
      h("td", {}, h("a", { href: `#/experiments/${e.id}` }, `#${e.id} ${e.name}`), " ", statusBadge(e.status)),
      names.flatMap((n) => {
        const r = cell[`${e.id} ${n}`];
        const won = Boolean(winners[n]?.has(e.id));
        return [
          h("td", { class: `num${won ? " winner" : ""}`, dataset: { metric: n, kind: "best" },
            title: r ? `at step ${r.best_step}` : "" }, r ? formatNumber(r.best_value) : "–", won ? " ★" : ""),
          h("td", { class: "num", dataset: { metric: n, kind: "final" } }, r ? formatNumber(r.final_value) : "–"),
        ];
      }),
      h("td", { dataset: { kind: "diagnosis" }, title: (diagnoses[e.id]?.findings ?? []).map((f) => f.message).join("\n") },
        shortDiagnosis(diagnoses[e.id]))))));
  return h("div", { class: "card" },
    h("h2", {}, "Best and final values"),
    overall ? h("p", { id: "compare-winner" }, `Winner by ${winnerBy}: `, h("strong", {}, `#${overall.id} ${overall.name}`), " ★") : null,
    h("div", { class: "scroll" }, table));
}

export async function render(root, params) {
  const ids = (params.get("ids") || "").split(",").map(Number).filter((n) => n > 0);
  if (ids.length < 1) {
    root.replaceChildren(h("h1", {}, "Compare"), h("p", {}, "Select experiments in the ", h("a", { href: "#/experiments" }, "list"), " first."));
    return undefined;
  }
  const [data, full, diagnosed] = await Promise.all([api.compare(ids), Promise.all(ids.map((id) => api.getExperiment(id))),
    Promise.all(ids.map((id) => getDiagnosis(id).catch(() => null)))]);
  const diagnoses = Object.fromEntries(ids.map((id, i) => [id, diagnosed[i]]));
  const names = [...new Set(data.experiments.flatMap((e) => Object.keys(e.series)))].sort();
  const state = {
    metric: params.get("metric") || [WINNER_BY, "train/loss", names[0]].find((n) => names.includes(n)),
    x: params.get("x") || "step",
    log: params.get("log") === "1",
    smooth: Number(params.get("smooth") || 0),
    more: (params.get("more") || "").split(",").filter((n) => names.includes(n)),
  };
  const main = h("div", { class: "chart", id: "compare-chart" });
  const schedules = h("div", { class: "small-multiples", id: "compare-lr" });
  const charts = [];
  const extra = h("div", { class: "charts", id: "compare-extra" });
  const extraCharts = new Map(); // metric name → its chart

  const remember = () => {
    const view = new URLSearchParams({ metric: state.metric, more: state.more.join(","), x: state.x, log: state.log ? "1" : "0",
      smooth: String(state.smooth) });
    history.replaceState(null, "", `#/compare?ids=${ids.join(",")}&${view}`);
  };
  const linesOf = (metric) => data.experiments.map((e, i) => lineFor(e, metric, state.x, state.smooth, i)).filter(Boolean);
  const mainLines = () => linesOf(state.metric);
  // one card per ticked metric, in the order of the names; unticked ones are taken down
  const drawExtra = () => {
    for (const [metric, chart] of extraCharts) {
      if (!state.more.includes(metric)) { chart.destroy(); extraCharts.delete(metric); }
    }
    const view = { series: [], logY: state.log, xLabel: X_LABELS[state.x] };
    extra.replaceChildren(...names.filter((n) => state.more.includes(n)).map((metric) => {
      const chart = extraCharts.get(metric);
      if (chart) { chart.update({ ...view, series: linesOf(metric) }); return chart.card; }
      const box = h("div", { class: "chart", dataset: { metric } });
      const card = h("div", { class: "card" }, box);
      extra.append(card); // lay out before drawing, so the chart takes the card's width
      const made = lineChart(box, { ...view, title: metric, yLabel: "", series: linesOf(metric) });
      made.card = card;
      extraCharts.set(metric, made);
      return card;
    }));
  };
  const redraw = () => {
    remember();
    drawExtra();
    charts[0].update({ series: mainLines(), logY: state.log, xLabel: X_LABELS[state.x], title: state.metric });
    data.experiments.forEach((e, i) => {
      const line = lineFor(e, "lr", state.x, 0, i);
      charts[i + 1].update({ series: line ? [line] : [], xLabel: X_LABELS[state.x] });
    });
  };

  const controls = h("form", { class: "filters", id: "compare-controls", onsubmit: (e) => e.preventDefault() },
    h("label", {}, "metric ", h("select", { name: "metric", onchange: (e) => { state.metric = e.target.value; redraw(); } },
      names.map((n) => h("option", { value: n, selected: n === state.metric }, n)))),
    h("label", {}, "x-axis ", h("select", { name: "x", onchange: (e) => { state.x = e.target.value; redraw(); } },
      Object.entries(X_LABELS).map(([v, t]) => h("option", { value: v, selected: v === state.x }, t)))),
    h("label", {}, h("input", { type: "checkbox", name: "log", checked: state.log, onchange: (e) => { state.log = e.target.checked; redraw(); } }), " log scale"),
    h("label", {}, "smoothing ", h("input", { type: "range", name: "smooth", min: 0, max: 0.99, step: 0.01, value: state.smooth,
      oninput: (e) => { state.smooth = Number(e.target.value); e.target.nextElementSibling.textContent = state.smooth.toFixed(2); redraw(); } }),
    h("output", {}, state.smooth.toFixed(2))),
    h("fieldset", { id: "compare-more" }, h("legend", {}, "more metrics"),
      names.map((n) => h("label", {}, h("input", { type: "checkbox", name: "more", value: n, checked: state.more.includes(n),
        onchange: (e) => { state.more = names.filter((m) => m === n ? e.target.checked : state.more.includes(m)); redraw(); } }), ` ${n}`))));

  root.replaceChildren(
    h("div", { class: "toolbar" }, h("h1", {}, `Compare ${data.experiments.length} experiments`)),
    controls,
    h("div", { class: "card" }, main),
    extra,
    h("div", { class: "card" }, h("h2", {}, "Learning-rate schedules"), schedules),
    summaryTable(data, diagnoses),
    specDiffTable(full));

  charts.push(lineChart(main, { title: state.metric, xLabel: X_LABELS[state.x], yLabel: "", logY: state.log, series: mainLines(), height: 320 }));
  data.experiments.forEach((e, i) => {
    const box = h("div", { class: "chart small", dataset: { id: e.id } });
    schedules.append(box);
    const line = lineFor(e, "lr", state.x, 0, i);
    charts.push(lineChart(box, { title: `#${e.id} ${e.name}`, xLabel: X_LABELS[state.x], yLabel: "lr", series: line ? [line] : [], height: 160, legend: false }));
  });
  drawExtra();
  remember();
  return () => [...charts, ...extraCharts.values()].forEach((c) => c.destroy());
}
