// The dashboard's router: hash routes, so the api serves only static files.  Each page module
// exports render(root, params, id) and may return a cleanup function (charts, streams).
// Every render is timed (performance.measure "render <page>", also window.descentTimings),
// up to the first paint after its data is in the DOM.

import * as compare from "./compare.js";
import * as datasets from "./datasets.js";
import * as experiment from "./experiment.js";
import * as experiments from "./experiments.js";
import * as newExperiment from "./new.js";

const ROUTES = [
  [/^\/experiments\/(\d+)$/, "experiment", experiment],
  [/^\/experiments$/, "experiments", experiments],
  [/^\/new$/, "new", newExperiment],
  [/^\/compare$/, "compare", compare],
  [/^\/datasets$/, "datasets", datasets],
];

window.descentTimings = [];
let cleanup = null;
let generation = 0;

const nextPaint = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

async function route() {
  const [path, search = ""] = (location.hash.slice(1) || "/experiments").split("?");
  const match = ROUTES.map(([re, name, page]) => [path.match(re), name, page]).find(([m]) => m);
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  const mine = ++generation;
  const root = document.createElement("div");
  root.id = "view";
  root.className = "view";
  document.getElementById("view").replaceWith(root);
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", path.startsWith(a.getAttribute("href").slice(1)));
  if (!match) {
    root.textContent = `No page at ${path}.`;
    return;
  }
  const [m, name, page] = match;
  const started = performance.now();
  performance.mark(`render ${name} start`);
  try {
    const done = await page.render(root, new URLSearchParams(search), m[1]);
    if (mine !== generation) { if (typeof done === "function") done(); return; }
    cleanup = done;
    await nextPaint();
    performance.measure(`render ${name}`, `render ${name} start`);
    window.descentTimings.push({ page: name, ms: performance.now() - started });
    root.dataset.rendered = name;
  } catch (error) {
    if (mine !== generation) return;
    root.replaceChildren();
    const box = document.createElement("pre");
    box.className = "error";
    box.textContent = `Could not show this page: ${error.message}`;
    root.append(box);
    throw error;
  }
}

window.addEventListener("hashchange", route);
route();
