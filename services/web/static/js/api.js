// The one place the UI talks HTTP: same-origin /api/... through the web entry point.
// Errors become ApiError (an RFC 9457 problem) or OfflineError (no answer / gateway errors),
// and every answer tells the connectivity listeners whether the APIs are reachable.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }
}

export class OfflineError extends Error {
  constructor(detail) {
    super(detail);
    this.name = "OfflineError";
  }
}

const UNREACHABLE = new Set([502, 503, 504]);
const listeners = new Set();

/** fn(online: boolean, detail: string) after every request that got, or failed to get, an answer. */
export function onConnectivity(fn) {
  listeners.add(fn);
}

function report(online, detail = "") {
  for (const fn of listeners) fn(online, detail);
}

async function problemOf(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      // fall through: an unreadable body still gets a readable message
    }
  }
  return { title: response.statusText || `HTTP ${response.status}`, status: response.status };
}

async function request(method, path, { body, headers = {}, signal } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api${path}`, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    report(false, "The network request failed.");
    throw new OfflineError("Cannot reach TaskFlow: the network request failed.");
  }
  if (UNREACHABLE.has(response.status)) {
    const problem = await problemOf(response);
    report(false, problem.detail || problem.title || "");
    throw new ApiError(response.status, problem);
  }
  report(true);
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const etag = response.headers.get("ETag");
  const data = response.status === 204 ? null : await response.json();
  return { data, etag };
}

export function listTasks(filters, cursor, signal) {
  const query = new URLSearchParams();
  for (const priority of filters.priorities) query.append("priority", priority);
  if (filters.completed) query.set("completed", filters.completed);
  if (filters.q) query.set("q", filters.q);
  query.set("sort", filters.sort);
  query.set("limit", String(filters.limit));
  if (cursor) query.set("cursor", cursor);
  return request("GET", `/tasks?${query}`, { signal });
}

export const getTask = (id) => request("GET", `/tasks/${id}`);
export const createTask = (fields) => request("POST", "/tasks", { body: fields });
export const updateTask = (id, changes, etag) =>
  request("PATCH", `/tasks/${id}`, { body: changes, headers: { "If-Match": etag } });
export const deleteTask = (id, etag) =>
  request("DELETE", `/tasks/${id}`, { headers: { "If-Match": etag } });
export const getStats = () => request("GET", "/stats");
export const getScaling = () => request("GET", "/scaling");

/** A sentence for a person: the problem's title and detail, and the fields it names. */
export function describeError(error) {
  if (error instanceof OfflineError) return error.message;
  if (error instanceof ApiError) {
    const { title, detail, errors } = error.problem;
    let text = [title, detail].filter(Boolean).join(": ") || `The request failed (HTTP ${error.status}).`;
    if (Array.isArray(errors) && errors.length) {
      text += ` (${errors.map((e) => `${e.field}: ${e.message}`).join("; ")})`;
    }
    return text;
  }
  return `Something went wrong: ${error.message}`;
}
