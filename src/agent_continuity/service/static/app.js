// The page: routing, the recovery protocol on opening, the session's heartbeat,
// and a normal close (the tab closed, the page left) that is not a crash.

import { api, ApiError, endOnUnload } from "./api.js";
import { renderDashboard } from "./dashboard.js";
import { renderSessionDetail, renderSessionList } from "./sessions.js";
import { clearNotices, confidenceView, h, notice, percent } from "./ui.js";
import { Workspace } from "./workspace.js";

const main = document.getElementById("main");
const TAB_KEY = "continuity.session"; // per tab: survives a reload, not a closed tab
const HEARTBEAT_DEFAULT_S = 30; // DESIGN §6: browser-lease-ttl's default

let workspace = null;
let lease = null; // the token of this page's claim on its session, named by its end
let opening = null;
let heartbeatTimer = null;
let closed = false;
let me = null;

// -- the session's life --------------------------------------------------

/** Runs the seed protocol once per page, then opens the chosen session. */
function openWorkspace() {
  opening ??= (async () => {
    const reopened = await reopenAfterReload();
    await attach(reopened ? reopened.id : await recoverOrStart(), reopened?.claim);
  })().catch((err) => {
    opening = null;
    throw err;
  });
  return opening;
}

/**
 * A reload (or coming back within a few seconds) continues this tab's session:
 * the unloading page only asked for a deferred end, which the service applies
 * after browser-leave-grace unless a page claims the session first. Claiming
 * it is this page's first heartbeat: no recovery, nothing logged. Later, the
 * session has ended (or was interrupted) and the seed protocol decides.
 * A closed tab forgets its session id.
 */
async function reopenAfterReload() {
  const id = sessionStorage.getItem(TAB_KEY);
  const nav = performance.getEntriesByType("navigation")[0];
  if (!id || !nav || !["reload", "back_forward"].includes(nav.type)) return null;
  try {
    return { id, claim: await api.heartbeat(id, true) };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return null;
  }
}

/** GET /api/recovery: auto-resume, ask, or start afresh (the seed's resumeSession). */
async function recoverOrStart() {
  let found = await api.recovery();
  if (!found) return startFresh();
  try {
    if (found.decision !== "prompt") {
      // The service follows its own decision (answer null): the log says nobody was asked.
      const result = await api.recover(found.sessionId, null);
      if (result.outcome === "restored") {
        notice("Session resumed automatically.", {
          kind: "ok", id: "recovered",
          detail: `${result.contextSummary} Confidence ${percent(result.confidence?.score)}.`,
        });
        return found.sessionId;
      }
      if (result.outcome === "new-session") {
        notice("Started a new session.", {
          kind: "warn", id: "recovered",
          detail: `The previous session (${found.sessionId}) could not be resumed with enough ` +
            `confidence (${percent(result.confidence?.score)}); it was archived.`,
        });
        return result.newSessionId || startFresh();
      }
      if (result.outcome !== "awaiting-answer") throw new Error(nothingRecovered(result));
      found = result; // the score crossed a threshold since it was read: ask after all
    }
    const accept = await ask(found);
    const result = await api.recover(found.sessionId, accept);
    if (accept && result.outcome === "restored") {
      notice("Your previous session is back where you left it.", { kind: "ok", id: "recovered" });
      return found.sessionId;
    }
    if (!accept && result.outcome === "new-session") {
      notice("Started afresh. The previous session was archived.", {
        kind: "info", id: "recovered", detail: `You can still read ${found.sessionId} under Sessions.`,
      });
      return result.newSessionId || startFresh();
    }
    throw new Error(nothingRecovered(result));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    // Another tab may have answered first, or the saved state failed its checks:
    // what was saved stays under Sessions; work goes on in a new session.
    notice("The previous session could not be recovered here.", {
      kind: "bad", id: "recovered", detail: err.message,
    });
    return startFresh();
  }
}

async function startFresh() {
  return (await api.start({ type: "research" })).id;
}

function nothingRecovered(result) {
  const why = (result.warnings || []).join(" ");
  return `Nothing was restored (${result.outcome || result.status}). ${why}`.trim();
}

/** The seed's question, with the summary, the confidence and its reasons. */
function ask(found) {
  const dialog = document.getElementById("resume-dialog");
  document.getElementById("resume-meta").textContent = `${found.sessionId} · ${found.mode} recovery`;
  document.getElementById("resume-summary").textContent = found.contextSummary || "";
  document.getElementById("resume-confidence").replaceChildren(confidenceView(found.confidence, found.decision));
  const next = found.nextSteps || [];
  document.getElementById("resume-next").replaceChildren(...(next.length
    ? [h("h3", {}, "Next steps"), h("ul.reasons", {}, next.map((s) => h("li", {}, s)))]
    : []));
  return new Promise((resolve) => {
    // A choice is required: Escape must not silently pick one.
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "accept"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("resume-accept").focus();
  });
}

async function attach(id, claimed) {
  sessionStorage.setItem(TAB_KEY, id);
  // The page takes the session's lease over, with a token of its own.
  lease = (claimed || (await api.heartbeat(id, true))).lease;
  const details = await api.session(id);
  workspace = new Workspace(main, details, { onLost: lost });
  if (route().page === "workspace") {
    workspace.render();
    focusComposer();
  }
  schedule(id);
}

/** Who is signed in, and how often the page must heartbeat (GET /api/me). */
async function whoAmI() {
  me ??= api.me().catch((err) => {
    me = null;
    throw err;
  });
  return me;
}

async function schedule(id) {
  clearInterval(heartbeatTimer);
  let seconds = HEARTBEAT_DEFAULT_S / 3;
  try {
    // The service says: a third of browser-lease-ttl, so one lost beat never costs the session.
    seconds = Number((await whoAmI()).heartbeatSeconds) || seconds;
  } catch (err) {
    // Keep the default.
  }
  heartbeatTimer = setInterval(async () => {
    try {
      await api.heartbeat(id, false, lease);
    } catch (err) {
      if (err instanceof ApiError && [401, 404, 409].includes(err.status)) lost(err);
    }
  }, Math.max(50, seconds * 1000));
}

function lost(err) {
  clearInterval(heartbeatTimer);
  heartbeatTimer = null;
  notice("This session is no longer open here.", {
    kind: "bad", id: "lost",
    detail: `${err.message} Reload the page to get it back.`,
  });
}

// A normal close is not a crash: end the session while the page goes away.
window.addEventListener("pagehide", (event) => {
  if (!workspace || closed || event.persisted) return;
  closed = true;
  clearInterval(heartbeatTimer);
  const notes = workspace.notes?.value;
  if (notes !== undefined && notes !== workspace.savedNotes) {
    // Notes typed in the last moment before the close (the save waits for a pause).
    const summary = notes.trim() ? notes : "";
    navigator.sendBeacon(`/api/sessions/${encodeURIComponent(workspace.id)}/update`,
      new Blob([JSON.stringify({ summary })], { type: "application/json" }));
  }
  endOnUnload(workspace.id, lease);
});

// Back from the back-forward cache: the page never ended its session; beat again at once.
// (A page hidden into the cache sends no end: pagehide's `persisted` says so.)
window.addEventListener("pageshow", (event) => {
  if (!event.persisted || !workspace) return;
  api.heartbeat(workspace.id, false, lease).then(() => schedule(workspace.id)).catch((err) => lost(err));
});

// -- routing -------------------------------------------------------------

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const match = path.match(/^\/sessions\/(.+)$/);
  if (match) return { page: "session", id: decodeURIComponent(match[1]) };
  if (path === "/sessions") return { page: "sessions", status: params.get("status") };
  if (path === "/dashboard") return { page: "dashboard", q: params.get("q") || "" };
  return { page: "workspace" };
}

async function show() {
  const where = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === (where.page === "session" ? "sessions" : where.page);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (where.page === "workspace") {
      if (workspace) {
        workspace.render();
        await workspace.refresh();
      } else {
        main.replaceChildren(h("p.loading", {}, "Opening your workspace…"));
        await openWorkspace();
      }
      focusComposer();
    } else if (where.page === "dashboard") {
      await renderDashboard(main, where.q);
      document.getElementById("search-input")?.focus(); // type, Enter, Tab to the results
    } else if (where.page === "sessions") {
      await renderSessionList(main, where.status);
      main.focus();
    } else {
      await renderSessionDetail(main, where.id);
      main.focus();
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin();
    main.replaceChildren(h("h1", {}, "Something went wrong"), h("p", {}, err.message || String(err)),
      h("button.button", { type: "button", onclick: () => location.reload() }, "Try again"));
  }
}

function focusComposer() {
  // No scroll: on a short window the header and the latest messages stay in view.
  document.getElementById("composer-input")?.focus({ preventScroll: true });
}

function showLogin() {
  clearNotices();
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off",
    required: true, placeholder: "Your access token" });
  main.replaceChildren(h("section.panel.login", { "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    h("p", {}, "Open the login link that ", h("code", {}, "continuity serve"),
      " printed, or paste the token ", h("code", {}, "continuity users add NAME"), " gave you."),
    h("form", { method: "get", action: "/login" },
      h("label.visually-hidden", { for: "token" }, "Access token"), input,
      h("button.button.primary", { type: "submit" }, "Sign in"))));
  input.focus();
}

async function showUser() {
  try {
    const who = await whoAmI();
    document.getElementById("whoami").replaceChildren(
      h("span", { "data-testid": "user" }, `Signed in as ${who.user}`),
      h("span.badge", { title: "Who writes the assistant's replies" }, `assistant: ${who.responder}`));
  } catch (err) {
    // Not signed in: the page shows the sign-in form.
  }
}

window.addEventListener("hashchange", show);
show();
showUser();
