// One experiment (#/experiments/ID): status and progress, a summary (latest and best values,
// elapsed time, ETA), live curves from the SSE stream (losses on a log scale at will), what the
// page waits for when there are no curves, the error of a failed run, cancel, clone, edit,
// delete and the trained weights.

import * as api from "./api.js";
import { formatNumber, lineChart, spansDecades } from "./charts.js";
import { progressBar, statusBadge } from "./experiments.js";
import { diagnosisPanel } from "./diagnosis.js";
import { h } from "./forms.js";
import { landscapePanel } from "./landscape.js";
import { isRangeTest, rangeTestCard } from "./range_test.js";
import { deleteButton, editPanel } from "./run_edit.js";
import { stateNotice } from "./run_state.js";
import { summaryCard } from "./run_summary.js";

const TERMINAL = ["succeeded", "failed", "cancelled", "pruned"];
// Which recorded series each panel draws.
const PANELS = [
  { id: "loss", title: "Loss", pick: (n) => n.endsWith("/loss") },
  { id: "accuracy", title: "Accuracy", pick: (n) => /\/(accuracy|r2)$/.test(n) },
  { id: "lr", title: "Learning rate", pick: (n) => n === "lr" },
  { id: "grad_norm", title: "Gradient norm", pick: (n) => n === "grad_norm" },
];
const REDRAW_MS = 250;
const QUEUE_POLL_MS = 5000; // how often a queued run's place and reason are asked again
const TICK_MS = 1000; // the elapsed time and ETA of a live run

// Appends streamed points after each series' last step (the stream starts from step 0, the page
// from a downsampled read).
export function mergePoints(series, added) {
  for (const [name, points] of Object.entries(added)) {
    const target = (series[name] ??= { steps: [], values: [], higher_is_better: points.higher_is_better, diagnostic: points.diagnostic });
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
  // the loss panel's log scale: chosen by the user, else on when the losses span > 2 decades
  const logToggle = h("input", { type: "checkbox", id: "log-loss", onchange: () => { logChosen = true; drawCharts(); } });
  let logChosen = false;
  for (const panel of PANELS) {
    const box = h("div", { class: "chart", id: `chart-${panel.id}` });
    const toggle = panel.id === "loss" ? h("label", { class: "chart-option" }, logToggle, " log scale") : null;
    grid.append(h("div", { class: "card" }, toggle, box));
    panels[panel.id] = { box, chart: null };
  }
  const notice = h("div", { id: "run-notice" });
  const summary = h("div", { id: "run-summary-slot" });
  const rangeSlot = h("div", { id: "range-test-slot" }); // an LR range test's loss against LR
  let range = null;
  const diagnosis = diagnosisPanel(id); // what the convergence rules see, asked again as epochs land
  const landscape = landscapePanel(id); // a succeeded run's loss landscape
  let edit = null;
  let waiting = null; // the run's entry in GET /queue while it is queued
  let stream = null;
  let redrawTimer = null;
  let queueTimer = null;
  let closed = false;
  const ticker = setInterval(() => { if (!TERMINAL.includes(experiment.status)) drawSummary(); }, TICK_MS);
  root.dataset.streamEvents = "0";

  let refused = null; // why the api refused to delete it
  const drawHeader = () => {
    const e = experiment;
    const live = !TERMINAL.includes(e.status);
    header.replaceChildren(...[
      h("div", { class: "toolbar" },
        h("h1", {}, `#${e.id} ${e.name}`), statusBadge(e.status), progressBar(e.progress),
        live && !e.cancel_requested ? h("button", { id: "cancel", onclick: cancel }, "Cancel") : null,
        e.cancel_requested && live ? h("span", { class: "muted" }, "cancel requested") : null,
        e.status === "succeeded" ? h("a", { class: "button", id: "download", href: api.checkpointUrl(e.id), download: `experiment-${e.id}.pt` }, "Download weights") : null,
        e.status === "succeeded" ? h("a", { class: "button", id: "download-model", href: api.modelUrl(e.id), title: "torch.export program with its preprocessing; torch alone loads it" }, "Model (.pt2)") : null,
        e.status === "succeeded" ? h("a", { class: "button", id: "download-best", href: api.modelUrl(e.id, "pt2", "best"), title: "the best epoch's weights, by the early-stopping metric (val/loss without)" }, "Best epoch (.pt2)") : null,
        e.status === "succeeded" ? h("a", { class: "button", id: "download-onnx", href: api.modelUrl(e.id, "onnx") }, "ONNX") : null,
        h("a", { class: "button", href: `#/new?from=${e.id}` }, "Clone with changes"),
        live ? null : deleteButton(e, (error) => { refused = error.message; drawHeader(); })),
      refused ? h("p", { class: "error", id: "delete-refused" }, `Not deleted: ${refused}`) : null,
      e.study_id ? h("p", { id: "experiment-study" }, h("a", { href: `#/studies/${e.study_id}` },
        `trial ${e.trial_number} of study ${e.study_id}`)) : null,
      h("p", { id: "experiment-tags" }, e.tags.map((t) => h("span", { class: "tag" }, t))),
      e.spec?.description ? h("p", { id: "experiment-notes" }, e.spec.description) : null,
      e.error ? h("pre", { class: "error", id: "experiment-error" }, e.error) : null,
      e.stop_reason ? h("p", { class: "notice", id: "experiment-stopped" }, e.stop_reason) : null,
      details(e),
      h("details", {}, h("summary", {}, "Resolved spec"), h("pre", {}, JSON.stringify(e.spec, null, 2))),
    ].filter(Boolean));
    landscape.show(e);
  };

  const hasPoints = () => Object.values(series).some((s) => s.values.some((v) => v !== null));
  const drawSummary = () => summary.replaceChildren(summaryCard(experiment, series));
  const drawNotice = () => {
    const shown = stateNotice(experiment, hasPoints(), waiting);
    notice.replaceChildren(...(shown ? [shown] : []));
  };
  const drawEdit = () => {
    const next = editPanel(experiment, (saved) => { experiment = saved; drawHeader(); drawEdit(); });
    if (edit) edit.replaceWith(next);
    edit = next;
  };
  const askQueue = async () => {
    queueTimer = null;
    if (experiment.status !== "queued") { waiting = null; drawNotice(); return; }
    waiting = (await api.queue()).waiting.find((w) => w.id === experiment.id) ?? null;
    if (closed) return;
    drawNotice();
    queueTimer = setTimeout(askQueue, QUEUE_POLL_MS);
  };

  function drawCharts() {
    redrawTimer = null;
    grid.hidden = !hasPoints(); // no empty frames: the notice says what the page waits for
    drawNotice();
    drawSummary();
    if (grid.hidden) return;
    if (!range && isRangeTest(series)) range = rangeTestCard(rangeSlot, experiment.id, series);
    for (const panel of PANELS) {
      const names = Object.keys(series).filter(panel.pick).sort();
      const lines = names.map((n) => ({ label: n, xs: series[n].steps, ys: series[n].values }));
      const slot = panels[panel.id];
      let logY;
      if (panel.id === "loss") {
        if (!logChosen) logToggle.checked = spansDecades(lines);
        logY = logToggle.checked;
      }
      if (slot.chart) slot.chart.update({ series: lines, logY });
      else slot.chart = lineChart(slot.box, { title: panel.title, xLabel: "step", yLabel: panel.title, series: lines, logY });
    }
  }
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
    await diagnosis.load();
    drawHeader();
    drawCharts();
    root.dataset.finished = "1";
  };

  drawEdit();
  // the diagnosis below the charts: as it grows it moves no chart (uPlot keeps its cursor's offsets)
  root.replaceChildren(header, notice, summary, rangeSlot, grid, diagnosis.el, landscape.el, edit);
  drawHeader();
  drawCharts();
  await diagnosis.load();
  if (experiment.status === "queued") await askQueue();
  if (TERMINAL.includes(experiment.status)) {
    root.dataset.finished = "1";
  } else {
    stream = new EventSource(api.streamUrl(id));
    const counted = () => { root.dataset.streamEvents = String(Number(root.dataset.streamEvents) + 1); };
    stream.addEventListener("metrics", (event) => {
      counted();
      mergePoints(series, JSON.parse(event.data));
      scheduleRedraw();
      diagnosis.refresh();
    });
    stream.addEventListener("status", async (event) => {
      counted();
      const status = JSON.parse(event.data);
      if (status.status === "deleted") { stream.close(); return; }
      experiment = { ...experiment, ...status };
      // the stream leaves out started_at, which the elapsed time and ETA count from
      if (!experiment.started_at && status.status !== "queued") experiment = await api.getExperiment(id);
      drawHeader();
      drawCharts();
      if (experiment.status === "queued" && !queueTimer) askQueue();
      if (TERMINAL.includes(status.status)) finish();
    });
  }
  return () => {
    closed = true;
    if (stream) stream.close();
    clearTimeout(redrawTimer);
    clearTimeout(queueTimer);
    clearInterval(ticker);
    for (const slot of Object.values(panels)) if (slot.chart) slot.chart.destroy();
    if (range) range.destroy();
    diagnosis.destroy();
    landscape.destroy();
  };
}
