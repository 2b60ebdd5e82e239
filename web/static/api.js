// The HTTP api under /api/v1: one function per call, errors as ApiError carrying the status and
// the api's `detail` (a string, or pydantic's list of {loc, msg} for a 422).
//
// The browser sends the session cookie itself; every state-changing request also sends the
// session's CSRF token (from /me or the sign-in answer) in X-CSRF-Token.  A 401 from any call
// means the session has ended: the page goes to #/login, which brings the user back after.

import * as session from "./session.js";

export const API = "/api/v1";
const SAFE = ["GET", "HEAD"];

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : (detail || []).map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; "));
    this.status = status;
    this.detail = detail;
  }
}

// Thrown for a 401: the page is on its way to #/login, so there is nothing to show.
export class SignedOut extends ApiError {}

export function loginRoute() {
  const [path] = location.hash.slice(1).split("?");
  const here = location.hash.slice(1) || "/experiments";
  return path === "/login" ? location.hash : `#/login?${new URLSearchParams({ next: here })}`;
}

function signedOut() {
  session.setMe(null);
  location.hash = loginRoute();
}

// `answer401`: a 401 is this call's answer (a wrong password), not an ended session.
async function request(method, path, body, { answer401 = false } = {}) {
  const init = { method, headers: {} };
  const csrf = session.csrfToken();
  if (!SAFE.includes(method) && csrf) init.headers["X-CSRF-Token"] = csrf;
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => null);
  const detail = payload ? payload.detail : response.statusText;
  if (response.status === 401 && !answer401) {
    signedOut();
    throw new SignedOut(401, detail);
  }
  if (!response.ok) throw new ApiError(response.status, detail);
  return payload;
}

function query(params) {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return entries.length ? "?" + new URLSearchParams(entries).toString() : "";
}

// The catalogs never change while the api runs: fetch each once per page load (a failed
// fetch, e.g. before signing in, is not kept).
const catalogs = {};
export function catalog(kind) {
  catalogs[kind] ??= request("GET", `/${kind}`).catch((error) => {
    delete catalogs[kind];
    throw error;
  });
  return catalogs[kind];
}

// Who is signed in: /me's answer, or null when nobody is (a 401 here is an answer).
export const whoAmI = () => request("GET", "/me", undefined, { answer401: true })
  .catch((error) => { if (error.status === 401) return null; throw error; });
export const login = (username, password) => request("POST", "/auth/login", { username, password }, { answer401: true });
export const logout = () => request("POST", "/auth/logout", undefined, { answer401: true });

export const listTokens = () => request("GET", "/tokens");
export const createToken = (body) => request("POST", "/tokens", body);
export const revokeToken = (id) => request("DELETE", `/tokens/${id}`);

// `project_id`: only that project's objects (null: every project the user is in).
export const listExperiments = (filters) => request("GET", `/experiments${query(filters)}`);
export const getExperiment = (id) => request("GET", `/experiments/${id}`);
export const createExperiment = (spec) => request("POST", "/experiments", spec);
export const cancelExperiment = (id) => request("POST", `/experiments/${id}/cancel`);
// `changes`: any of name, tags (a list), description; answers the experiment as it is now.
export const updateExperiment = (id, changes) => request("PATCH", `/experiments/${id}`, changes);
// Only a finished run (204); a live one answers 409.
export const deleteExperiment = (id) => request("DELETE", `/experiments/${id}`);
// Each worker queue's depth and, per queued run of the user's projects, its position and why it waits.
export const queue = () => request("GET", "/queue");
export const checkpointUrl = (id) => `${API}/experiments/${id}/checkpoint`;
export const modelUrl = (id, format = "pt2", which = "last") =>
  `${API}/experiments/${id}/model?format=${format}&which=${which}`;
export const streamUrl = (id) => `${API}/experiments/${id}/stream`;

export const metrics = (id, { names, maxPoints = 1000 } = {}) =>
  request("GET", `/experiments/${id}/metrics${query({ names: names && names.join(","), max_points: maxPoints })}`);

export const compare = (ids, { names, maxPoints = 500 } = {}) =>
  request("GET", `/compare${query({ ids: ids.join(","), names: names && names.join(","), max_points: maxPoints })}`);

export const listDatasets = (projectId) => request("GET", `/datasets${query({ project_id: projectId })}`);
export const uploadDataset = (form) => request("POST", "/datasets", form);
export const createSplit = (body) => request("POST", "/splits", body);
export const getSplit = (id) => request("GET", `/splits/${id}`);

export const listSplits = (projectId) => request("GET", `/splits${query({ project_id: projectId })}`);

// Studies: hyperparameter searches whose trials are experiments.  A list page's studies carry
// counts and the best trial but no trial list; GET /studies/{id} has every trial and importance.
export const listStudies = (filters) => request("GET", `/studies${query(filters)}`);
export const getStudy = (id) => request("GET", `/studies/${id}`);
export const createStudy = (spec) => request("POST", "/studies", spec);
// The solver tournament: {base, solvers?, lr_low?, lr_high?, points?, pruner?, metric?, name?, parallel?, seed?}.
export const createTournament = (body) => request("POST", "/studies/tournament", body);
export const cancelStudy = (id) => request("POST", `/studies/${id}/cancel`);

// Loss landscapes of a succeeded run: the same request again answers the stored one (200).
export const createLandscape = (experimentId, body) => request("POST", `/experiments/${experimentId}/landscapes`, body);
export const listLandscapes = (experimentId) => request("GET", `/experiments/${experimentId}/landscapes`);
export const getLandscape = (id) => request("GET", `/landscapes/${id}`);

// Races of solvers on a 2-D test function (the functions: catalog("races/functions")).
export const createRace = (spec) => request("POST", "/races", spec);
export const getRace = (id) => request("GET", `/races/${id}`);
export const listRaces = (projectId) => request("GET", `/races${query({ project_id: projectId })}`);
