// Line charts over uPlot (vendored, global `uPlot`).  A chart takes series as separate
// (xs, ys) lists, which uPlot.join aligns on the union of their x values.

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
  "#4b5563", "#65a30d"];

export const color = (i) => PALETTE[i % PALETTE.length];

export function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return Number(v.toPrecision(4)).toExponential();
  return String(Number(v.toPrecision(4)));
}

// Exponential moving average, debiased as TensorBoard does so the first points are not pulled to
// zero: s_t = a*s_{t-1} + (1-a)*v_t, shown as s_t / (1 - a^n) after n finite values.
export function smooth(values, weight) {
  if (!weight) return values;
  let s = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    s = weight * s + (1 - weight) * v;
    n += 1;
    return s / (1 - weight ** n);
  });
}

function aligned(series, logY) {
  if (!series.length) return [[]];
  const tables = series.map((s) => {
    const ys = logY ? s.ys.map((y) => (y !== null && y > 0 ? y : null)) : s.ys;
    return [Float64Array.from(s.xs), ys];
  });
  return tables.length === 1 ? tables[0] : uPlot.join(tables);
}

function lastFinite(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && Number.isFinite(values[i])) return values[i];
  return null;
}

// The legend's value: the hovered point's, or the latest one while nothing is hovered (uPlot
// asks with a null index then), so a glance at a chart reads the run as it is now.
const legendValue = (u, v, seriesIndex, index) =>
  formatNumber(index === null || index === undefined ? lastFinite(u.data[seriesIndex] || []) : v);

function options({ title, xLabel, yLabel, logY, series, width, height, timeX, legend = true }) {
  return {
    title, width, height,
    legend: { show: legend, live: true },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: Boolean(timeX) }, y: logY ? { distr: 3 } : {} },
    axes: [{ label: xLabel }, { label: yLabel, size: 60, values: (u, ticks) => ticks.map(formatNumber) }],
    series: [
      { label: xLabel, value: legendValue },
      ...series.map((s, i) => ({
        label: s.label, stroke: s.color || color(i), width: 1.5, spanGaps: true,
        points: { show: s.xs.length < 60 }, value: legendValue,
      })),
    ],
  };
}

// A chart in `container` that redraws itself on update({series, logY, xLabel}) and follows the
// container's width.  The uPlot instance is kept on the element (`.__plot`) so tests can read
// exactly what is drawn.
export function lineChart(container, config) {
  let current = { height: 240, ...config };
  let plot = null;
  const draw = () => {
    if (plot) plot.destroy();
    container.replaceChildren();
    const width = Math.max(240, container.clientWidth || 480);
    plot = new uPlot(options({ ...current, width }), aligned(current.series, current.logY), container);
    container.__plot = plot;
    container.dataset.series = String(current.series.length);
    container.dataset.points = String(current.series.reduce((n, s) => n + s.ys.filter((y) => y !== null).length, 0));
  };
  draw();
  const resize = new ResizeObserver(() => {
    if (plot && container.clientWidth && Math.abs(plot.width - container.clientWidth) > 8) {
      plot.setSize({ width: container.clientWidth, height: current.height });
    }
  });
  resize.observe(container);
  return {
    update(changes) {
      // new data on the same lines is a cheap setData; anything else rebuilds the chart
      const sameShape = plot && ["logY", "xLabel", "title", "timeX"].every((k) => !(k in changes) || changes[k] === current[k])
        && changes.series && changes.series.length === current.series.length
        && changes.series.every((s, i) => s.label === current.series[i].label);
      current = { ...current, ...changes };
      if (sameShape) {
        plot.setData(aligned(current.series, current.logY));
        container.dataset.points = String(current.series.reduce((n, s) => n + s.ys.filter((y) => y !== null).length, 0));
      } else {
        draw();
      }
    },
    destroy() {
      resize.disconnect();
      if (plot) plot.destroy();
    },
  };
}

// True when the lines' positive values span more than `decades` powers of ten: such a curve
// reads better on a log scale (a loss falling from 2 to 0.001 is flat on a linear one).
export function spansDecades(series, decades = 2) {
  let low = Infinity;
  let high = 0;
  for (const s of series) {
    for (const y of s.ys) if (y !== null && Number.isFinite(y) && y > 0) { low = Math.min(low, y); high = Math.max(high, y); }
  }
  return high > 0 && high / low > 10 ** decades;
}
