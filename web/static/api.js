// The HTTP api under /api/v1: one function per call, errors as ApiError carrying the status and
// the api's `detail` (a string, or pydantic's list of {loc, msg} for a 422).

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : (detail || []).map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; "));
    this.status = status;
    this.detail = detail;
  }
}

async function request(method, path, body) {
  const init = { method, headers: {} };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload ? payload.detail : response.statusText);
  return payload;
}

function query(params) {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return entries.length ? "?" + new URLSearchParams(entries).toString() : "";
}

// The catalogs never change while the api runs: fetch each once per page load.
const catalogs = {};
export function catalog(kind) {
  catalogs[kind] ??= request("GET", `/${kind}`);
  return catalogs[kind];
}

export const listExperiments = (filters) => request("GET", `/experiments${query(filters)}`);
export const getExperiment = (id) => request("GET", `/experiments/${id}`);
export const createExperiment = (spec) => request("POST", "/experiments", spec);
export const cancelExperiment = (id) => request("POST", `/experiments/${id}/cancel`);
export const checkpointUrl = (id) => `${API}/experiments/${id}/checkpoint`;
export const streamUrl = (id) => `${API}/experiments/${id}/stream`;

export const metrics = (id, { names, maxPoints = 1000 } = {}) =>
  request("GET", `/experiments/${id}/metrics${query({ names: names && names.join(","), max_points: maxPoints })}`);

export const compare = (ids, { names, maxPoints = 500 } = {}) =>
  request("GET", `/compare${query({ ids: ids.join(","), names: names && names.join(","), max_points: maxPoints })}`);

export const listDatasets = () => request("GET", "/datasets");
export const uploadDataset = (form) => request("POST", "/datasets", form);
export const createSplit = (body) => request("POST", "/splits", body);
export const getSplit = (id) => request("GET", `/splits/${id}`);

export const listSplits = () => request("GET", "/splits");
