// A succeeded run's loss landscape (Li et al. 2018) on its page: the loss around the run's weights
// along one or two filter-normalised random directions, computed once by a lab worker and stored
// (POST /experiments/{id}/landscapes answers the stored one for the same request, so a revisit
// draws at once).  A line over α for dims=1 (uPlot, via charts.js); for dims=2 a heat map of the
// loss (log colour scale) with contour lines on a canvas.  The run's weights are the origin
// ("end"); its initial weights projected onto the directions are "start".
//
// The drawn values are kept on the elements (`dataset`) so tests read what is drawn.

import * as api from "./api.js";
import { formatNumber, lineChart } from "./charts.js";
import { h } from "./forms.js";

const POLL_MS = 1000;
const LEVELS = 12; // contour lines, evenly spaced in log(loss)
// viridis, sampled at five stops
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

function colourAt(t) {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
}

const logOf = (v) => (v === null || !(v > 0) ? null : Math.log(v));

// Marching squares: the segments where the grid (rows over β, columns over α) crosses `level`,
// in grid coordinates (column, row).
export function contourSegments(grid, level) {
  const segments = [];
  for (let r = 0; r + 1 < grid.length; r++) {
    for (let c = 0; c + 1 < grid[r].length; c++) {
      const corners = [[c, r, grid[r][c]], [c + 1, r, grid[r][c + 1]], [c + 1, r + 1, grid[r + 1][c + 1]],
        [c, r + 1, grid[r + 1][c]]];
      if (corners.some(([, , v]) => v === null)) continue;
      const crossings = [];
      for (let k = 0; k < 4; k++) {
        const [x0, y0, v0] = corners[k];
        const [x1, y1, v1] = corners[(k + 1) % 4];
        if ((v0 < level) !== (v1 < level)) {
          const t = (level - v0) / (v1 - v0);
          crossings.push([x0 + t * (x1 - x0), y0 + t * (y1 - y0)]);
        }
      }
      for (let k = 0; k + 1 < crossings.length; k += 2) segments.push([crossings[k], crossings[k + 1]]);
    }
  }
  return segments;
}

function heatMap(box, landscape, part) {
  const { result, spec } = landscape;
  const grid = result[part].loss.map((row) => row.map(logOf));
  const n = grid.length;
  const finite = grid.flat().filter((v) => v !== null);
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  const size = Math.max(240, Math.min(520, box.clientWidth || 480));
  const margin = 36;
  const canvas = h("canvas", { id: "landscape-canvas", width: size + margin, height: size + margin, dataset: {
    points: String(n), part, min: String(Math.exp(low)), max: String(Math.exp(high)),
    start: result.start.coords.join(","),
  } });
  const ctx = canvas.getContext("2d");
  const cell = size / n;
  // α runs left to right, β bottom to top; grid row i is β = axis[i]
  const px = (col) => margin + (col + 0.5) * cell;
  const py = (row) => size - (row + 0.5) * cell;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const v = grid[r][c];
      const [red, green, blue] = v === null ? [255, 255, 255] : colourAt(high > low ? (v - low) / (high - low) : 0);
      ctx.fillStyle = `rgb(${red},${green},${blue})`;
      ctx.fillRect(margin + c * cell, size - (r + 1) * cell, Math.ceil(cell), Math.ceil(cell));
    }
  }
  ctx.strokeStyle = "rgba(255,255,255,0.8)";
  ctx.lineWidth = 1;
  for (let k = 1; k < LEVELS; k++) {
    const level = low + (k / LEVELS) * (high - low);
    ctx.beginPath();
    for (const [[x0, y0], [x1, y1]] of contourSegments(grid, level)) {
      ctx.moveTo(px(x0), py(y0));
      ctx.lineTo(px(x1), py(y1));
    }
    ctx.stroke();
  }
  const span = spec.span;
  const toCol = (a) => ((a + span) / (2 * span)) * (n - 1);
  const mark = (coords, fill, label, below) => {
    const clamp = (v) => Math.max(-span, Math.min(span, v));
    const [a, b] = coords.map(clamp);
    const x = px(toCol(a));
    const y = py(toCol(b));
    ctx.fillStyle = fill;
    ctx.strokeStyle = "#111";
    ctx.beginPath();
    ctx.arc(x, y, 6, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
    ctx.fillStyle = "#111";
    ctx.font = "12px sans-serif";
    ctx.fillText(label, x + 8, below ? y + 16 : y - 8); // start and end are often close: one label each side
  };
  mark(result.start.coords, "#dc2626", "start", true);
  mark(result.end.coords, "#ffffff", "end", false);
  ctx.fillStyle = "#374151";
  ctx.font = "12px sans-serif";
  ctx.fillText(`α ∈ [−${span}, ${span}] →`, margin, size + 24);
  ctx.save();
  ctx.translate(14, size);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(`β ∈ [−${span}, ${span}] →`, 0, 0);
  ctx.restore();
  box.replaceChildren(canvas, h("p", { class: "muted" },
    `${part} loss, log colour scale from ${formatNumber(Math.exp(low))} (purple) to ${formatNumber(Math.exp(high))} `
    + `(yellow); ${LEVELS - 1} contour lines`));
  return { destroy() {} };
}

// The value of `ys` (over `xs`, increasing) at x, linear between points; null outside or at a gap.
export function interpolate(xs, ys, x) {
  for (let i = 0; i + 1 < xs.length; i++) {
    if (x >= xs[i] && x <= xs[i + 1]) {
      if (ys[i] === null || ys[i + 1] === null) return null;
      return ys[i] + ((x - xs[i]) / (xs[i + 1] - xs[i])) * (ys[i + 1] - ys[i]);
    }
  }
  return null;
}

function line(box, landscape) {
  const { result, spec } = landscape;
  const parts = ["train", "val"].filter((p) => result[p]?.loss?.length);
  const series = parts.map((p) => ({ label: `${p}/loss`, xs: result.axis, ys: result[p].loss }));
  // start and end as points on the last part's curve (validation when there is one); a start
  // beyond the span sits at its edge
  const on = result[parts[parts.length - 1]].loss;
  const startAt = Math.max(-spec.span, Math.min(spec.span, result.start.coords[0]));
  series.push({ label: "start", xs: [startAt], ys: [interpolate(result.axis, on, startAt)], color: "#ea580c" },
    { label: "end", xs: [0], ys: [interpolate(result.axis, on, 0)], color: "#111827" });
  const chart = h("div", { class: "chart", id: "chart-landscape" });
  box.replaceChildren(chart);
  return lineChart(chart, { title: "Loss along the direction", xLabel: "α", yLabel: "loss", series });
}

function facts(landscape) {
  const { result } = landscape;
  const centre = result.centre.val ?? result.centre.train;
  const start = result.start;
  return h("p", { class: "muted", id: "landscape-facts" },
    `centre (the run's ${landscape.spec.which} weights): val loss ${formatNumber(result.centre.val?.loss)}, `
    + `train loss ${formatNumber(result.centre.train?.loss)}`
    + (centre?.accuracy !== undefined ? `, val accuracy ${formatNumber(result.centre.val?.accuracy)}` : "")
    + ` · start at (${start.coords.map(formatNumber).join(", ")}), ${formatNumber(start.distance)} away; `
    + `the directions span ${formatNumber(100 * (1 - start.left_out))}% of that distance`
    + ` · ${result.examples.train} train and ${result.examples.val} validation examples`
    + ` · ${formatNumber(result.timings.total_s)} s`);
}

// The panel for run `experimentId`: {el, show(experiment), destroy()}; shown once the run has succeeded.
export function landscapePanel(experimentId) {
  const el = h("div", { id: "landscape-slot" });
  const dims = h("select", { id: "landscape-dims" }, h("option", { value: "2" }, "2-D map"),
    h("option", { value: "1" }, "1-D line"));
  const points = h("input", { id: "landscape-points", type: "number", min: "5", max: "61", step: "2",
    placeholder: "25", title: "points per axis (odd)" });
  const which = h("select", { id: "landscape-which" }, h("option", { value: "last" }, "last weights"),
    h("option", { value: "best" }, "best epoch"));
  const part = h("select", { id: "landscape-part", onchange: () => draw() },
    h("option", { value: "val" }, "validation"), h("option", { value: "train" }, "train"));
  const status = h("p", { id: "landscape-status", class: "muted" });
  const box = h("div", { id: "landscape-plot" });
  const info = h("div");
  let current = null;
  let drawn = null;
  let timer = null;
  let shown = false;
  let closed = false;
  dims.addEventListener("change", () => { points.placeholder = dims.value === "1" ? "31" : "25"; });

  function draw() {
    if (drawn) drawn.destroy();
    drawn = null;
    box.replaceChildren();
    info.replaceChildren();
    if (!current) return;
    const { spec } = current;
    const shape = spec.dims === 1 ? `${spec.points} points` : `${spec.points}×${spec.points}`;
    el.dataset.landscapeStatus = current.status;
    if (current.status === "failed") {
      status.replaceChildren(h("span", { class: "error" }, `Landscape #${current.id} failed: ${current.error}`));
      return;
    }
    if (current.status !== "done") {
      status.textContent = `Landscape #${current.id} (${shape}) is ${current.status}…`;
      return;
    }
    status.textContent = `Landscape #${current.id}: ${spec.dims === 1 ? "a line" : "a plane"}, ${shape}, `
      + `span ±${spec.span}, seed ${spec.seed}`;
    drawn = spec.dims === 1 ? line(box, current) : heatMap(box, current, part.value);
    info.replaceChildren(facts(current));
  }

  async function follow(landscape) {
    current = landscape;
    draw();
    clearTimeout(timer);
    if (!closed && (landscape.status === "queued" || landscape.status === "running")) {
      timer = setTimeout(async () => follow(await api.getLandscape(landscape.id)), POLL_MS);
    }
  }

  async function compute() {
    const body = { dims: Number(dims.value), which: which.value };
    if (points.value) body.points = Number(points.value);
    try {
      await follow(await api.createLandscape(experimentId, body));
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      status.replaceChildren(h("span", { class: "error", id: "landscape-refused" }, error.message));
    }
  }

  el.replaceChildren(h("div", { class: "card", id: "landscape" },
    h("div", { class: "toolbar" }, h("h2", {}, "Loss landscape"), dims, points, which,
      h("button", { id: "landscape-compute", onclick: compute }, "Compute"), part),
    h("p", { class: "muted" }, "The loss around the run's weights along filter-normalised random directions "
      + "(Li et al. 2018), computed once and stored."),
    status, box, info));
  el.hidden = true;

  return {
    el,
    async show(experiment) {
      el.hidden = experiment.status !== "succeeded";
      if (el.hidden || shown) return;
      shown = true;
      const { items } = await api.listLandscapes(experimentId);
      const latest = items.find((l) => l.status !== "failed") ?? items[0]; // newest first
      if (latest) await follow(latest);
      else status.textContent = "Not computed yet.";
    },
    destroy() {
      closed = true;
      clearTimeout(timer);
      if (drawn) drawn.destroy();
    },
  };
}
