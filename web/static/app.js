// The dashboard's router: hash routes, so the api serves only static files.  Each page module
// exports render(root, params, id) and may return a cleanup function (charts, streams).
// Every render is timed (performance.measure "render <page>", also window.descentTimings),
// up to the first paint after its data is in the DOM.
//
// Before the first route, GET /me says who is signed in; nobody is: every page but #/login
// sends the user there (with ?next= to come back to).  The header shows the user, the project
// switcher (it re-renders the page) and "Sign out".

import * as api from "./api.js";
import * as compare from "./compare.js";
import * as datasets from "./datasets.js";
import * as experiment from "./experiment.js";
import * as experiments from "./experiments.js";
import * as login from "./login.js";
import * as newExperiment from "./new.js";
import * as newStudy from "./new_study.js";
import * as race from "./race.js";
import * as races from "./races.js";
import * as session from "./session.js";
import * as studies from "./studies.js";
import * as study from "./study.js";
import * as tokens from "./tokens.js";

const ROUTES = [
  [/^\/experiments\/(\d+)$/, "experiment", experiment],
  [/^\/experiments$/, "experiments", experiments],
  [/^\/new$/, "new", newExperiment],
  [/^\/compare$/, "compare", compare],
  [/^\/studies\/new$/, "new-study", newStudy],
  [/^\/studies\/(\d+)$/, "study", study],
  [/^\/studies$/, "studies", studies],
  [/^\/races\/(\d+)$/, "race", race],
  [/^\/races$/, "races", races],
  [/^\/datasets$/, "datasets", datasets],
  [/^\/tokens$/, "tokens", tokens],
  [/^\/login$/, "login", login],
];

window.descentTimings = [];
let cleanup = null;
let generation = 0;

const nextPaint = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

function freshView() {
  const root = document.createElement("div");
  root.id = "view";
  root.className = "view";
  document.getElementById("view").replaceWith(root);
  return root;
}

async function route() {
  const [path, search = ""] = (location.hash.slice(1) || "/experiments").split("?");
  if (path !== "/login" && !session.current()) {
    location.replace(api.loginRoute()); // its hashchange routes again
    return;
  }
  const match = ROUTES.map(([re, name, page]) => [path.match(re), name, page]).find(([m]) => m);
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  const mine = ++generation;
  const root = freshView();
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
    if (mine !== generation || error instanceof api.SignedOut) return; // on the way to #/login
    root.replaceChildren();
    const box = document.createElement("pre");
    box.className = "error";
    box.textContent = `Could not show this page: ${error.message}`;
    root.append(box);
    throw error;
  }
}

// The header: who is signed in, their projects, sign out; hidden with the nav when nobody is.
function drawAccount(me) {
  document.body.dataset.signedIn = me ? "1" : "0";
  document.getElementById("account").hidden = !me;
  document.querySelector(".top nav").hidden = !me;
  if (!me) return;
  document.getElementById("signed-in-user").textContent = me.username;
  const chosen = session.project();
  const switcher = document.getElementById("project-switcher");
  switcher.replaceChildren(new Option("All projects", "", false, chosen === null),
    ...me.projects.map((p) => new Option(`${p.name} (${p.role})`, String(p.id), false, p.id === chosen)));
}

function wireHeader() {
  document.getElementById("project-switcher").addEventListener("change", (event) => {
    session.setProject(Number(event.target.value) || null);
    route();
  });
  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api.logout();
    } catch (error) {
      if (error.status !== 401) throw error; // a 401: the session had ended already
    }
    session.setMe(null);
    location.hash = "#/login";
  });
}

// A 401 in an event handler (a click after the session ended) is no error: the page is
// already on its way to #/login.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof api.SignedOut) event.preventDefault();
});

async function start() {
  session.onChange(drawAccount);
  wireHeader();
  let me;
  try {
    me = await api.whoAmI();
  } catch (error) {
    freshView().append(Object.assign(document.createElement("pre"), {
      className: "error", textContent: `Could not reach the api: ${error.message}`,
    }));
    throw error;
  }
  session.setMe(me);
  window.addEventListener("hashchange", route);
  route();
}

start();
