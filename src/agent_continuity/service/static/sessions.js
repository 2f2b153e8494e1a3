// The sessions page: the user's sessions, one session's detail, and the recovery log.

import { api, ApiError } from "./api.js";
import { badge, h, percent, when } from "./ui.js";

const ROLE_NAMES = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };
const FILTERS = [
  ["", "All"],
  ["active", "Active"],
  ["interrupted", "Interrupted"],
  ["completed", "Completed"],
  ["archived", "Archived"],
];

export async function renderSessionList(root, status) {
  const select = h("select", { id: "status-filter" },
    FILTERS.map(([value, label]) => h("option", { value, selected: (status || "") === value }, label)));
  select.addEventListener("change", () => {
    location.hash = select.value ? `#/sessions?status=${select.value}` : "#/sessions";
  });
  const body = h("div.table-wrap", {}, h("p.loading", {}, "Loading sessions…"));
  const log = h("section.panel", { "aria-labelledby": "log-title", "data-testid": "recovery-log" },
    h("h2", { id: "log-title" }, "Recovery log"), h("p.loading", {}, "Loading…"));
  root.replaceChildren(
    h("h1", { id: "sessions-title" }, "Sessions"),
    h("div.toolbar", {}, h("div", {}, h("label", { for: "status-filter" }, "Status"), select)),
    h("section.panel", { "aria-labelledby": "sessions-title" }, body),
    h("div", { style: "height:1rem" }),
    log,
  );
  const data = await api.sessions(status || undefined);
  const sessions = [...(data.sessions || [])].reverse(); // newest first
  body.replaceChildren(sessions.length ? sessionTable(sessions) : h("p.empty", {}, "No sessions."));
  renderLog(log, null);
}

function sessionTable(sessions) {
  return h(
    "table",
    { "data-testid": "session-table" },
    h("caption.visually-hidden", {}, "Your sessions, newest first"),
    h("thead", {}, h("tr", {}, ["Session", "Status", "Task", "Started", "Last activity"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, sessions.map((s) => {
      const id = s.id || s.sessionId;
      return h("tr", { "data-session": id },
        h("td", {}, h("a.mono", { href: `#/sessions/${encodeURIComponent(id)}` }, id)),
        h("td", {}, badge(s.status)),
        h("td", {}, s.context?.currentTask || s.task || "—"),
        h("td", {}, when(s.created)),
        h("td", {}, when(s.lastActivity)));
    })),
  );
}

async function renderLog(section, sessionId) {
  const heading = section.querySelector("h2");
  let entries;
  try {
    entries = (await api.recoveryLog()).entries || [];
  } catch (err) {
    const why = err instanceof ApiError ? err.message : String(err);
    section.replaceChildren(heading, h("p.empty", {}, `The recovery log cannot be read: ${why}`));
    return;
  }
  if (sessionId) {
    entries = entries.filter((e) => e.sessionId === sessionId || e.newSessionId === sessionId);
  }
  const items = [...entries].reverse().map((e) => logEntry(e));
  section.replaceChildren(heading, items.length
    ? h("ol.list", { "aria-label": "Recovery log, newest first" }, items)
    : h("p.empty", {}, "No interruptions or recoveries yet."));
}

function logEntry(e) {
  const link = (id) => h("a.mono", { href: `#/sessions/${encodeURIComponent(id)}` }, id);
  if (e.event === "interruption") {
    return h("li.log-entry.interruption", {},
      h("strong", {}, "Interrupted "), link(e.sessionId), ` · cause ${e.cause} · `, when(e.at));
  }
  return h("li.log-entry.recovery", {},
    h("strong", {}, "Recovery "), link(e.sessionId), " ",
    badge(e.decision), " ", badge(e.outcome || e.status),
    ` · confidence ${percent(e.score)} · `,
    e.answer === true ? "answered: resume · " : e.answer === false ? "answered: start afresh · " : "",
    e.newSessionId ? h("span", {}, "new session ", link(e.newSessionId), " · ") : "",
    when(e.at));
}

export async function renderSessionDetail(root, id) {
  root.replaceChildren(h("p.loading", {}, "Loading session…"));
  let d;
  try {
    d = await api.session(id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      root.replaceChildren(h("h1", {}, "Session not found"),
        h("p", {}, `There is no session ${id} among yours. `, h("a", { href: "#/sessions" }, "All sessions")));
      return;
    }
    throw err;
  }
  const s = d.session;
  const facts = [
    ["Status", badge(s.status)],
    ["Type", s.type],
    ["Task", s.context?.currentTask || "—"],
    ["Started", when(s.created)],
    ["Last activity", when(s.lastActivity)],
    ["Interruption", s.interruption ? `${s.interruption.cause} · ${when(s.interruption.at)}` : "—"],
    ["Recovered from", s.recoveredFrom ? h("a.mono", { href: `#/sessions/${s.recoveredFrom}` }, s.recoveredFrom) : "—"],
    ["Continuation", s.continuationId || "—"],
    ["Progress", s.state?.progress || "—"],
  ];
  const conversation = d.conversation || d.recentMessages || [];
  const log = h("section.panel", { "aria-labelledby": "log-title", "data-testid": "recovery-log" },
    h("h2", { id: "log-title" }, "Recovery log"), h("p.loading", {}, "Loading…"));
  root.replaceChildren(
    h("p", {}, h("a", { href: "#/sessions" }, "← All sessions")),
    h("h1", { class: "mono" }, s.id),
    h("div.detail-grid", {},
      h("div", {},
        h("section.panel", { "aria-label": "Facts" },
          h("dl.facts", {}, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
        h("div", { style: "height:1rem" }),
        h("section.panel", { "aria-labelledby": "conv-title" },
          h("h2", { id: "conv-title" }, `Conversation (${conversation.length})`),
          conversation.length
            ? h("ol.messages", { style: "max-height:none" }, conversation.map((m) =>
              h(`li.message.${m.role}`, {}, h("span.who", {}, ROLE_NAMES[m.role] || m.role), m.text)))
            : h("p.empty", {}, "No messages."))),
      h("div.side", {},
        h("section.panel", {}, h("h2", {}, "Tasks"), listOf(d.tasks || [], (t) =>
          h("li.task", {}, h("span.task-title", {}, t.title || t.id), badge(t.status)))),
        h("section.panel", {}, h("h2", {}, "Decisions"), listOf(s.context?.keyDecisions || [], (x) =>
          h("li.decision", {}, x))),
        h("section.panel", {}, h("h2", {}, "Notes"),
          s.context?.conversationSummary ? h("p", { style: "white-space:pre-wrap" }, s.context.conversationSummary)
            : h("p.empty", {}, "No notes.")),
        h("section.panel", {}, h("h2", {}, "Recovery points"), listOf(d.recoveryPoints || [], (p) =>
          h("li", {}, h("span.mono", {}, p.id), ` · ${p.trigger} · `, when(p.created)))),
        log)),
  );
  renderLog(log, s.id);
}

function listOf(items, item) {
  return items.length ? h("ul.list", {}, items.map(item)) : h("p.empty", {}, "None.");
}
