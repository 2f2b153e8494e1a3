// The HTTP API of `continuity serve` (DESIGN §6), as the page uses it.
// Same origin only: the login cookie (HttpOnly, SameSite=Strict) goes with each call.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", "X-Continuity": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", "The server cannot be reached; check that it is running.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "http", error.message || `HTTP ${response.status}`);
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  me: () => call("GET", "/api/me"),
  sessions: (status) => call("GET", status ? `/api/sessions?status=${enc(status)}` : "/api/sessions"),
  session: (id) => call("GET", `/api/sessions/${enc(id)}`),
  start: (fields) => call("POST", "/api/sessions", fields || {}),
  message: (id, role, text) => call("POST", `/api/sessions/${enc(id)}/messages`, { role, text }),
  reply: (id) => call("POST", `/api/sessions/${enc(id)}/reply`, {}),
  update: (id, fields) => call("POST", `/api/sessions/${enc(id)}/update`, fields),
  // claim: a page opening the session; lease: the token of its claim, on each renewal.
  heartbeat: (id, claim, lease) => call("POST", `/api/sessions/${enc(id)}/heartbeat`,
    claim ? { claim: true } : Number.isInteger(lease) ? { lease } : {}),
  save: (id, trigger) => call("POST", `/api/sessions/${enc(id)}/save`, trigger ? { trigger } : {}),
  end: (id) => call("POST", `/api/sessions/${enc(id)}/end`, {}),
  recovery: () => call("GET", "/api/recovery"),
  recover: (sessionId, answer) => call("POST", "/api/recovery", { sessionId, answer }),
  recoveryLog: () => call("GET", "/api/recovery/log"),
  analytics: () => call("GET", "/api/analytics"),
  search: (q, limit) => call("GET", `/api/search?q=${enc(q)}${limit ? `&limit=${enc(limit)}` : ""}`),
};

/**
 * Ends the session as the page goes away: a beacon survives the unload, fetch may not.
 * The end is deferred: a page cannot tell a reload from a close, so the service waits
 * browser-leave-grace for a page to claim the session back (the reload's page does)
 * and completes it otherwise. `lease` is the token of this page's claim: a late beacon
 * never ends the session under a newer page.
 */
export function endOnUnload(id, lease) {
  const url = `/api/sessions/${enc(id)}/end`;
  const json = JSON.stringify(Number.isInteger(lease) ? { deferred: true, lease } : { deferred: true });
  const body = new Blob([json], { type: "application/json" });
  if (!(navigator.sendBeacon && navigator.sendBeacon(url, body))) {
    fetch(url, { method: "POST", body: json, keepalive: true, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Continuity": "1" } }).catch(() => {});
  }
}
