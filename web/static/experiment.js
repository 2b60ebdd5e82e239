// One experiment (#/experiments/ID): status and progress, live curves from the SSE stream, the
// error of a failed run, cancel, clone and the trained weights.

import * as api from "./api.js";
import { formatNumber, lineChart } from "./charts.js";
import { progressBar, statusBadge } from "./experiments.js";
import { h } from "./forms.js";

const TERMINAL = ["succeeded", "failed", "cancelled"];
// Which recorded series each panel draws.
const PANELS = [
  { id: "loss", title: "Loss", pick: (n) => n.endsWith("/loss") },
  { id: "accuracy", title: "Accuracy", pick: (n) => /\/(accuracy|r2)$/.test(n) },
  { id: "lr", title: "Learning rate", pick: (n) => n === "lr" },
  { id: "grad_norm", title: "Gradient norm", pick: (n) => n === "grad_norm" },
];
const REDRAW_MS = 250;

// Appends streamed points after each series' last step (the stream starts from step 0, the page
// from a downsampled read).
export function mergePoints(series, added) {
  for (const [name, points] of Object.entries(added)) {
    const target = (series[name] ??= { steps: [], values: [] });
    const last = target.steps.length ? target.steps[target.steps.length - 1] : -1;
    points.steps.forEach((step, i) => {
      if (step > last) { target.steps.push(step); target.values.push(points.values[i]); }
    });
  }
}

function details(e) {
  const spec = e.spec;
  const rows = [
    ["solver", `${e.solver} · base LR ${formatNumber(spec.solver?.base_lr)}`],
    ["scheduler", spec.scheduler ? spec.scheduler.name : "none"],
    ["architecture", spec.architecture?.name],
    ["split", `#${e.split_id}`],
    ["epoch · step", `${e.epoch} / ${spec.training?.epochs ?? "?"} · ${e.step}`],
    ["worker", [e.worker_host, e.device].filter(Boolean).join(" · ") || "–"],
    ["created", new Date(e.created_at).toLocaleString()],
    ["finished", e.finished_at ? new Date(e.finished_at).toLocaleString() : "–"],
  ];
  return h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export async function render(root, params, id) {
  let experiment = await api.getExperiment(id);
  const initial = await api.metrics(id);
  const series = initial.series;
  const header = h("div", { id: "experiment-header" });
  const panels = {};
  const grid = h("div", { class: "charts" });
  for (const panel of PANELS) {
    const box = h("div", { class: "chart", id: `chart-${panel.id}` });
    grid.append(h("div", { class: "card" }, box));
    panels[panel.id] = { box, chart: null };
  }
  let stream = null;
  let redrawTimer = null;
  root.dataset.streamEvents = "0";

  const drawHeader = () => {
    const e = experiment;
    const live = !TERMINAL.includes(e.status);
    header.replaceChildren(...[
      h("div", { class: "toolbar" },
        h("h1", {}, `#${e.id} ${e.name}`), statusBadge(e.status), progressBar(e.progress),
        live && !e.cancel_requested ? h("button", { id: "cancel", onclick: cancel }, "Cancel") : null,
        e.cancel_requested && live ? h("span", { class: "muted" }, "cancel requested") : null,
        e.status === "succeeded" ? h("a", { class: "button", id: "download", href: api.checkpointUrl(e.id), download: `experiment-${e.id}.pt` }, "Download weights") : null,
        h("a", { class: "button", href: `#/new?from=${e.id}` }, "Clone with changes")),
      e.error ? h("pre", { class: "error", id: "experiment-error" }, e.error) : null,
      details(e),
      h("details", {}, h("summary", {}, "Resolved spec"), h("pre", {}, JSON.stringify(e.spec, null, 2))),
    ].filter(Boolean));
  };

  const drawCharts = () => {
    redrawTimer = null;
    for (const panel of PANELS) {
      const names = Object.keys(series).filter(panel.pick).sort();
      const lines = names.map((n) => ({ label: n, xs: series[n].steps, ys: series[n].values }));
      const slot = panels[panel.id];
      if (slot.chart) slot.chart.update({ series: lines });
      else slot.chart = lineChart(slot.box, { title: panel.title, xLabel: "step", yLabel: panel.title, series: lines });
    }
  };
  const scheduleRedraw = () => { redrawTimer ??= setTimeout(drawCharts, REDRAW_MS); };

  async function cancel() {
    try {
      experiment = await api.cancelExperiment(id);
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      experiment = await api.getExperiment(id); // it finished first (409): show how
    }
    drawHeader();
  }

  const finish = async () => {
    if (stream) stream.close();
    stream = null;
    experiment = await api.getExperiment(id);
    Object.assign(series, (await api.metrics(id)).series); // the whole run, downsampled once
    drawHeader();
    drawCharts();
    root.dataset.finished = "1";
  };

  root.replaceChildren(header, grid);
  drawHeader();
  drawCharts();
  if (TERMINAL.includes(experiment.status)) {
    root.dataset.finished = "1";
  } else {
    stream = new EventSource(api.streamUrl(id));
    const counted = () => { root.dataset.streamEvents = String(Number(root.dataset.streamEvents) + 1); };
    stream.addEventListener("metrics", (event) => {
      counted();
      mergePoints(series, JSON.parse(event.data));
      scheduleRedraw();
    });
    stream.addEventListener("status", (event) => {
      counted();
      const status = JSON.parse(event.data);
      if (status.status === "deleted") { stream.close(); return; }
      experiment = { ...experiment, ...status };
      drawHeader();
      if (TERMINAL.includes(status.status)) finish();
    });
  }
  return () => {
    if (stream) stream.close();
    clearTimeout(redrawTimer);
    for (const slot of Object.values(panels)) if (slot.chart) slot.chart.destroy();
  };
}
