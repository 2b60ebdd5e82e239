// One race (#/races/ID): polled until the lab worker is done, then every racer's trajectory over
// the function's contour plot (contour.js), animated by Play and a step slider, with the loss
// curves beside it and a legend saying where each racer ended.  "Share" is a link that runs the
// same race again for whoever opens it (races.js reads ?run=); "Edit" opens the form with it.

import * as api from "./api.js";
import { color, formatNumber, lineChart, spansDecades } from "./charts.js";
import { contourCanvas, frame } from "./contour.js";
import { h } from "./forms.js";
import { raceLink } from "./races.js";

const SIZE = 520;
const POLL_MS = 50;
// a race still queued after this long has no lab worker to take it, most likely
const SLOW_START_S = 5;
// an animation shows the whole race in about this many frames
const FRAMES = 240;

function drawFrame(canvas, background, race, fn, step) {
  const ctx = canvas.getContext("2d");
  ctx.drawImage(background, 0, 0);
  const { toPx } = frame(fn.bounds, canvas.width, canvas.height);
  const markers = [];
  const [sx, sy] = toPx(race.spec.start[0], race.spec.start[1]);
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc(sx, sy, 7, 0, 2 * Math.PI); // the start: a ring every trajectory leaves from
  ctx.stroke();
  race.result.racers.forEach((racer, i) => {
    const points = racer.trajectory;
    const last = Math.min(step, points.length - 1);
    ctx.strokeStyle = color(i);
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (let k = 0; k <= last; k++) ctx.lineTo(...toPx(points[k][0], points[k][1]));
    ctx.stroke();
    const at = toPx(points[last][0], points[last][1]);
    ctx.fillStyle = color(i);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(at[0], at[1], 5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
    markers.push(at);
  });
  canvas.dataset.step = String(step);
  canvas.__race = { step, markers };
}

function legend(race) {
  return h("table", { class: "race-legend" },
    h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "racer"), h("th", {}, "final f"), h("th", {}, "ends at"),
      h("th", {}, "steps"), h("th", {}, ""))),
    h("tbody", {}, race.result.racers.map((r, i) => {
      const end = r.trajectory[r.trajectory.length - 1];
      const note = r.error ? `could not run: ${r.error}` : r.diverged ? "diverged" : "";
      return h("tr", { class: r.error || r.diverged ? "racer-out" : "" },
        h("td", {}, h("span", { class: "swatch", style: `background:${color(i)}` })),
        h("td", {}, r.label),
        h("td", {}, formatNumber(r.loss[r.loss.length - 1])),
        h("td", {}, `(${formatNumber(end[0])}, ${formatNumber(end[1])})`),
        h("td", {}, String(r.trajectory.length - 1)),
        h("td", { class: "racer-note" }, note));
    })));
}

function board(root, race, fn) {
  const steps = race.spec.steps;
  const background = contourCanvas(race.result.grid, fn, SIZE, SIZE);
  const canvas = h("canvas", { id: "race-canvas", width: SIZE, height: SIZE, "aria-label": `${fn.title} contour` });
  const slider = h("input", { type: "range", id: "race-step", min: 0, max: steps, value: steps, "aria-label": "step" });
  const stepText = h("span", { id: "race-step-text" });
  const play = h("button", { type: "button", id: "race-play" }, "Play");
  const chart = h("div", { class: "chart", id: "race-loss" });
  let step = steps;
  let frameRequest = null;
  const show = (s) => {
    step = Math.max(0, Math.min(steps, s));
    slider.value = String(step);
    stepText.textContent = `step ${step} / ${steps}`;
    drawFrame(canvas, background, race, fn, step);
  };
  const stop = () => {
    if (frameRequest !== null) cancelAnimationFrame(frameRequest);
    frameRequest = null;
    play.textContent = "Play";
  };
  const advance = () => {
    show(step + Math.max(1, Math.round(steps / FRAMES)));
    frameRequest = step < steps ? requestAnimationFrame(advance) : null;
    if (frameRequest === null) stop();
  };
  play.addEventListener("click", () => {
    if (frameRequest !== null) { stop(); return; }
    if (step >= steps) show(0);
    play.textContent = "Pause";
    frameRequest = requestAnimationFrame(advance);
  });
  slider.addEventListener("input", () => { stop(); show(Number(slider.value)); });

  root.append(
    h("div", { class: "race-board" },
      h("div", { class: "race-plot" }, canvas, h("div", { class: "race-controls" }, play, slider, stepText),
        h("p", { class: "entry-note" }, "Shading and lines: log(f − min), evenly spaced levels. ○ start, ★ known minimum",
          fn.saddles.length ? ", × saddle point" : "", ".")),
      h("div", { class: "race-side" }, chart, legend(race))));
  const series = race.result.racers.map((r, i) => ({ label: r.label, xs: r.loss.map((_, k) => k), ys: r.loss, color: color(i) }));
  const positive = series.every((s) => s.ys.every((y) => y > 0));
  const plot = lineChart(chart, { title: "f along each trajectory", xLabel: "step", yLabel: "f(x, y)", series,
    logY: positive && spansDecades(series), height: 300 });
  show(steps);
  return () => { stop(); plot.destroy(); };
}

export async function render(root, _params, id) {
  const [first, functions] = await Promise.all([api.getRace(id), api.catalog("races/functions")]);
  let race = first;
  const fn = functions.items.find((f) => f.name === race.spec.function);
  const status = h("p", { id: "race-status" });
  root.replaceChildren(
    h("h1", {}, `Race #${race.id}: ${fn.title}`),
    h("p", { class: "race-meta" }, `f(x, y) = ${fn.formula} · from (${race.spec.start.join(", ")}) · ${race.spec.steps} steps · `,
      h("a", { href: raceLink(race.spec, "run"), id: "race-share", title: "Opening this link runs the same race again" },
        "Share (runs it again)"),
      " · ", h("a", { href: raceLink(race.spec, "spec"), id: "race-edit" }, "Edit and run again"),
      " · ", h("a", { href: "#/races" }, "All races")),
    status);
  while (!["done", "failed"].includes(race.status)) {
    const waited = (Date.now() - Date.parse(race.created_at)) / 1000;
    status.textContent = race.status === "queued" && waited > SLOW_START_S
      ? `The race has waited ${Math.round(waited)} s for a lab worker: is one running? (descent worker --queue lab)`
      : `The race is ${race.status}…`;
    await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
    if (!root.isConnected) return () => {}; // the page was left while waiting
    race = await api.getRace(id);
  }
  if (race.status === "failed") {
    status.className = "error";
    status.textContent = `The race failed: ${race.error}`;
    return () => {};
  }
  status.textContent = `Ran in ${formatNumber(race.result.compute_s)} s on the lab worker.`;
  const cleanup = board(root, race, fn);
  return cleanup;
}
