// An LR range test's chart on its run's page: train/loss and range/smoothed_loss against the
// learning rate of each step (log x), the suggested LR marked, the steepest-descent and
// lowest-loss LRs named, and "Use this LR" to start a run from this one at the suggested LR.
// Drawn with uPlot (vendored, global `uPlot`); the instance is kept on the chart element
// (`.__plot`) as charts.js does, so tests read exactly what is drawn.

import { color, formatNumber } from "./charts.js";
import { h } from "./forms.js";

export const SUGGESTED = "range/suggested_lr";
const POINTS = { [SUGGESTED]: "suggested", "range/steepest_lr": "steepest descent", "range/min_loss_lr": "lowest loss" };
const LINES = ["train/loss", "range/smoothed_loss"];

const lastValue = (s) => (s ? [...s.values].reverse().find((v) => v !== null && Number.isFinite(v)) ?? null : null);

// True when a run's recorded series are an LR range test's (it records the suggested LR).
export const isRangeTest = (series) => lastValue(series[SUGGESTED]) !== null;

// (lr, train/loss, smoothed loss) of every step that has an lr, by increasing lr.
export function rangePoints(series) {
  const lr = series.lr;
  if (!lr) return [[], [], []];
  const at = LINES.map((name) => new Map((series[name]?.steps || []).map((step, i) => [step, series[name].values[i]])));
  const rows = lr.steps.map((step, i) => [lr.values[i], ...at.map((m) => m.get(step) ?? null)])
    .filter(([x]) => x !== null && x > 0 && Number.isFinite(x))
    .sort((a, b) => a[0] - b[0]);
  return [0, 1, 2].map((k) => rows.map((r) => (r[k] !== null && Number.isFinite(r[k]) ? r[k] : null)));
}

// The card, drawn into `slot` (already in the page, for its width); returns {destroy}.
export function rangeTestCard(slot, experimentId, series) {
  const suggested = lastValue(series[SUGGESTED]);
  const data = rangePoints(series);
  const box = h("div", { class: "chart", id: "chart-range-test", dataset: { suggestedLr: String(suggested) } });
  const facts = Object.entries(POINTS).map(([name, text]) => [text, lastValue(series[name])]).filter(([, v]) => v !== null);
  slot.replaceChildren(h("div", { class: "card", id: "range-test" },
    h("div", { class: "toolbar" }, h("h2", {}, "LR range test"),
      h("a", { class: "button", id: "use-lr", href: `#/new?from=${experimentId}&base_lr=${suggested}` },
        `Use this LR (${formatNumber(suggested)})`)),
    h("p", { class: "muted", id: "range-test-lrs" }, facts.map(([text, v]) => `${text} ${formatNumber(v)}`).join(" · ")),
    box));
  // the loss explodes past the useful range: the y axis stops at 4× the smoothed loss's start
  const start = data[2].find((v) => v !== null) ?? data[1].find((v) => v !== null);
  const markSuggested = (u) => {
    const x = u.valToPos(suggested, "x", true);
    const { ctx } = u;
    ctx.save();
    ctx.strokeStyle = "#16a34a";
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.restore();
  };
  const plot = new uPlot({
    title: "Loss against learning rate", width: Math.max(240, box.clientWidth || 640), height: 280,
    legend: { show: true, live: true },
    scales: {
      x: { time: false, distr: 3 },
      y: { range: (u, lo, hi) => [lo, start ? Math.min(hi, 4 * start) : hi] },
    },
    // a log axis hides its minor ticks' labels by handing them over as null
    axes: [{ label: "learning rate (log)", values: (u, ticks) => ticks.map((v) => (v === null ? "" : formatNumber(v))) },
      { label: "loss", size: 60, values: (u, ticks) => ticks.map((v) => (v === null ? "" : formatNumber(v))) }],
    series: [
      { label: "lr", value: (u, v) => formatNumber(v) },
      ...LINES.map((label, i) => ({ label, stroke: color(i), width: i ? 2 : 1, spanGaps: true, points: { show: false },
        value: (u, v) => formatNumber(v) })),
    ],
    hooks: { draw: [markSuggested] },
  }, data, box);
  box.__plot = plot;
  const resize = new ResizeObserver(() => {
    if (box.clientWidth && Math.abs(plot.width - box.clientWidth) > 8) plot.setSize({ width: box.clientWidth, height: 280 });
  });
  resize.observe(box);
  return { destroy() { resize.disconnect(); plot.destroy(); } };
}
