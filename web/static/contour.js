// A 2-D function's contour plot on a canvas: the values on a grid (rows over ys, columns over
// xs) shaded and outlined at levels evenly spaced in log(f − min + δ), so a valley falling over
// many decades (Rosenbrock's) shows its floor as well as its walls; the known minima and saddle
// points marked.  Lines are traced by marching squares (Lorensen & Cline 1987, in 2-D) with
// linear interpolation along each cell edge.

const LEVELS = 18;

// f ↦ log(f − min + δ), δ a millionth of the range (a flat function gets δ = 1): finite for every
// finite value, the minimum at log δ.
export function logScale(values) {
  let low = Infinity;
  let high = -Infinity;
  for (const row of values) for (const v of row) if (Number.isFinite(v)) { low = Math.min(low, v); high = Math.max(high, v); }
  const delta = high > low ? (high - low) * 1e-6 : 1;
  return { low, high, delta, map: (v) => Math.log(v - low + delta) };
}

// Viridis-like ramp from dark blue (low) to yellow (high), t in [0, 1].
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function shade(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  return RAMP[i].map((c, k) => Math.round(c + (RAMP[i + 1][k] - c) * f));
}

// The segments of the level line at `level` through a grid of (scaled) values z[j][i].
export function isolines(z, level) {
  const segments = [];
  const rows = z.length;
  const cols = z[0].length;
  const cross = (a, b) => (level - a) / (b - a);
  for (let j = 0; j < rows - 1; j++) {
    for (let i = 0; i < cols - 1; i++) {
      const v = [z[j][i], z[j][i + 1], z[j + 1][i + 1], z[j + 1][i]]; // corners counter-clockwise from (i, j)
      const pts = [];
      const corners = [[i, j], [i + 1, j], [i + 1, j + 1], [i, j + 1]];
      for (let e = 0; e < 4; e++) {
        const a = v[e];
        const b = v[(e + 1) % 4];
        if ((a < level) !== (b < level)) {
          const t = cross(a, b);
          const [x0, y0] = corners[e];
          const [x1, y1] = corners[(e + 1) % 4];
          pts.push([x0 + (x1 - x0) * t, y0 + (y1 - y0) * t]);
        }
      }
      if (pts.length === 2) segments.push(pts);
      else if (pts.length === 4) segments.push([pts[0], pts[1]], [pts[2], pts[3]]); // a saddle cell
    }
  }
  return segments;
}

// The mapping between the function's coordinates and the canvas's pixels.
export function frame(bounds, width, height) {
  const [xMin, xMax, yMin, yMax] = bounds;
  return {
    toPx: (x, y) => [((x - xMin) / (xMax - xMin)) * width, height - ((y - yMin) / (yMax - yMin)) * height],
  };
}

function mark(ctx, [px, py], kind) {
  ctx.save();
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#fff";
  if (kind === "minimum") {
    ctx.beginPath();
    for (let k = 0; k < 10; k++) { // a five-pointed star
      const r = k % 2 ? 4 : 10;
      const a = -Math.PI / 2 + (k * Math.PI) / 5;
      ctx.lineTo(px + r * Math.cos(a), py + r * Math.sin(a));
    }
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
  } else { // a saddle: ×
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.moveTo(px - 7, py - 7); ctx.lineTo(px + 7, py + 7);
    ctx.moveTo(px + 7, py - 7); ctx.lineTo(px - 7, py + 7);
    ctx.stroke();
  }
  ctx.restore();
}

// Draws the function's shaded contour plot onto a canvas of the given size and returns it.
export function contourCanvas(grid, fn, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const scale = logScale(grid.values);
  const z = grid.values.map((row) => row.map((v) => (Number.isFinite(v) ? scale.map(v) : scale.map(scale.high))));
  const zLow = scale.map(scale.low);
  const zHigh = scale.map(scale.high);
  const rows = z.length;
  const cols = z[0].length;
  // the shading: one pixel per grid point, row 0 (the lowest y) at the bottom, then scaled up
  const cells = document.createElement("canvas");
  cells.width = cols;
  cells.height = rows;
  const image = cells.getContext("2d").createImageData(cols, rows);
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      const [r, g, b] = shade((z[j][i] - zLow) / (zHigh - zLow || 1));
      const at = ((rows - 1 - j) * cols + i) * 4;
      image.data.set([r, g, b, 255], at);
    }
  }
  cells.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(cells, 0, 0, width, height);
  // the level lines, in grid units mapped to pixels
  const sx = width / (cols - 1);
  const sy = height / (rows - 1);
  ctx.strokeStyle = "rgba(255, 255, 255, 0.45)";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let k = 1; k < LEVELS; k++) {
    for (const [[x0, y0], [x1, y1]] of isolines(z, zLow + ((zHigh - zLow) * k) / LEVELS)) {
      ctx.moveTo(x0 * sx, height - y0 * sy);
      ctx.lineTo(x1 * sx, height - y1 * sy);
    }
  }
  ctx.stroke();
  const { toPx } = frame(fn.bounds, width, height);
  for (const m of fn.minima) mark(ctx, toPx(m.x, m.y), "minimum");
  for (const [x, y] of fn.saddles) mark(ctx, toPx(x, y), "saddle");
  return canvas;
}
