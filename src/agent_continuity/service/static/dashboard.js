// The dashboard: the user's analytics (GET /api/analytics) as a summary and bar charts the
// page draws itself (SVG, no library), and a search over the user's sessions (GET /api/search).

import { api, ApiError } from "./api.js";
import { badge, h, percent } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const STATUSES = ["active", "completed", "interrupted", "archived"];

/** An SVG element: s("rect", {x: 0, ...}, child...). */
function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const n = Number(seconds);
  if (n < 90) return `${Math.round(n)} s`;
  if (n < 90 * 60) return `${Math.round(n / 60)} min`;
  if (n < 48 * 3600) return `${(n / 3600).toFixed(1)} h`;
  return `${(n / 86400).toFixed(1)} days`;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many || `${one}s`}`;
}

/**
 * A horizontal bar chart: one bar per [label, value], its value written beside it.
 * The SVG is an image with a text alternative; each bar carries data-key and data-value.
 */
function barChart(id, title, entries, empty) {
  const heading = h("h2", { id: `${id}-title` }, title);
  const section = h("section.panel.chart", { "aria-labelledby": `${id}-title`, "data-testid": id }, heading);
  if (!entries.length) {
    section.append(h("p.empty", {}, empty));
    return section;
  }
  const max = Math.max(1, ...entries.map(([, v]) => v));
  const row = 28;
  const labelWidth = 150;
  const barWidth = 220;
  const width = labelWidth + barWidth + 60;
  const described = entries.map(([k, v]) => `${k}: ${v}`).join(", ");
  const svg = s("svg", { viewBox: `0 0 ${width} ${entries.length * row + 4}`, role: "img",
    "aria-label": `${title}: ${described}`, class: "bars", width: "100%" },
  entries.map(([key, value], i) => {
    const y = i * row + 2;
    const length = Math.max(value ? 3 : 0, Math.round((value / max) * barWidth));
    return s("g", { "data-key": key, "data-value": value },
      s("text", { x: labelWidth - 8, y: y + 17, "text-anchor": "end", class: "bar-label" }, key),
      s("rect", { x: labelWidth, y: y + 4, width: length, height: row - 10, rx: 4, class: `bar ${key}` }),
      s("text", { x: labelWidth + length + 6, y: y + 17, class: "bar-value" }, value));
  }));
  section.append(svg);
  return section;
}

function summary(a) {
  const counts = a.sessions || {};
  const parts = STATUSES.map((k) => `${counts[k] || 0} ${k}`).join(", ");
  const lines = [
    `You have ${plural(counts.total || 0, "session")}: ${parts}.`,
    `${plural(a.interruptions || 0, "interruption")} and ${plural(a.recoveries?.total || 0, "recovery", "recoveries")}` +
      (a.confidence?.median !== null && a.confidence?.median !== undefined
        ? `, median recovery confidence ${percent(a.confidence.median)}.` : "."),
  ];
  const ttr = a.timeToRecovery || {};
  if (ttr.count) {
    lines.push(`Time from an interruption to its recovery: median ${duration(ttr.medianSeconds)}, ` +
      `90% within ${duration(ttr.p90Seconds)} (${plural(ttr.count, "recovery", "recoveries")}).`);
  }
  const risk = a.workAtRisk || {};
  if (risk.interruptions) {
    lines.push(`Work at risk when a session died: ${plural(risk.totalEvents || 0, "event")} after ` +
      `the last recovery point in all (median ${risk.medianEvents ?? 0}).`);
  }
  return h("section.panel", { "aria-label": "Summary", "data-testid": "analytics-summary" },
    lines.map((line) => h("p.summary-line", {}, line)));
}

function entriesOf(map) {
  return Object.entries(map || {}).filter(([, v]) => Number(v) > 0).map(([k, v]) => [k, Number(v)]);
}

/** A snippet whose matched words are in [brackets], with those words marked (as text, never HTML). */
function snippetView(snippet) {
  const parts = String(snippet || "").split(/\[([^\]]*)\]/);
  return h("span.snippet", {}, parts.map((part, i) => (i % 2 ? h("mark", {}, part) : part)));
}

async function runSearch(query, results, status) {
  results.replaceChildren();
  if (!query.trim()) {
    status.textContent = "";
    return;
  }
  status.textContent = "Searching…";
  let found;
  try {
    found = await api.search(query);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    status.textContent = `The search failed: ${err.message}`;
    return;
  }
  const hits = found.results || [];
  status.textContent = hits.length
    ? `${plural(hits.length, "result")} for “${query}”, best first.`
    : `No results for “${query}” in your sessions.`;
  results.replaceChildren(...hits.map((hit) => {
    const href = `#/sessions/${encodeURIComponent(hit.sessionId)}`;
    return h("li.search-hit", { "data-session": hit.sessionId, "data-seq": hit.seq },
      h("div.hit-head", {}, h("a.mono", { href }, hit.sessionId), " ", badge(hit.kind, "kind"),
        h("span.hit-seq", {}, ` #${hit.seq}`)),
      snippetView(hit.snippet));
  }));
}

export async function renderDashboard(root, query) {
  const input = h("input", { id: "search-input", name: "q", type: "search", autocomplete: "off",
    placeholder: "Words from a message, decision, task or note", value: query || "" });
  const status = h("p.search-status", { id: "search-status", role: "status", "aria-live": "polite" });
  const results = h("ol.list.search-results", { "aria-label": "Search results", "data-testid": "search-results" });
  const form = h("form.search-form", { role: "search", "aria-label": "Search your sessions" },
    h("label", { for: "search-input" }, "Search your sessions"),
    h("div.inline-form", {}, input, h("button.button.primary", { type: "submit" }, "Search")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = input.value.trim();
    const target = q ? `#/dashboard?q=${encodeURIComponent(q)}` : "#/dashboard";
    // The query goes in the address (back and reload keep it); the same query searches again.
    if (location.hash === target) runSearch(q, results, status).catch(() => {});
    else location.hash = target;
  });
  const charts = h("div.charts", {}, h("p.loading", {}, "Loading analytics…"));
  root.replaceChildren(
    h("h1", { id: "dashboard-title" }, "Dashboard"),
    h("section.panel", { "aria-labelledby": "search-title", "data-testid": "search" },
      h("h2", { id: "search-title" }, "Search"), form, status, results),
    h("div", { style: "height:1rem" }),
    h("h2", { id: "analytics-title" }, "Your sessions in figures"),
    charts,
  );
  const searching = runSearch(query || "", results, status);
  const figures = await api.analytics();
  const counts = figures.sessions || {};
  charts.replaceChildren(
    summary(figures),
    h("div.chart-grid", {},
      barChart("chart-sessions", "Sessions by status", STATUSES.map((k) => [k, Number(counts[k] || 0)]), "No sessions yet."),
      barChart("chart-causes", "Interruptions by cause", entriesOf(figures.interruptionsByCause), "No interruptions."),
      barChart("chart-decisions", "Recoveries by decision", entriesOf(figures.recoveries?.byDecision), "No recoveries yet."),
      barChart("chart-confidence", "Recovery confidence", entriesOf(figures.confidence?.buckets), "No recoveries yet.")),
  );
  await searching;
}
