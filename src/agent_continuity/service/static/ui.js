// Small DOM helpers: every text goes in through textContent, never as HTML.

/** h("div.a.b", {attr: v, onclick: f}, child, "text", ...) -> an element. */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const node = document.createElement(name);
  if (classes.length) node.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function badge(text, kind) {
  return h(`span.badge.${(kind || text || "").toString().replace(/[^a-z-]/gi, "")}`, {}, text);
}

/** A message at the top of the page; `kind` is ok, warn, bad or info. */
export function notice(text, { kind = "info", detail = "", id = "" } = {}) {
  const box = document.getElementById("notices");
  if (id) box.querySelector(`[data-notice="${id}"]`)?.remove();
  const item = h(
    `div.notice.${kind}`,
    { dataset: { notice: id || "" }, "data-testid": id ? `notice-${id}` : "notice" },
    h("div.notice-text", {}, text, detail ? h("small", {}, detail) : null),
    h("button.button.link", { type: "button", onclick: () => item.remove(),
      "aria-label": "Dismiss this notice" }, "Dismiss"),
  );
  box.append(item);
  return item;
}

export function clearNotices() {
  document.getElementById("notices").replaceChildren();
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function percent(score) {
  return `${Math.round((Number(score) || 0) * 100)}%`;
}

/** The meter and the reasons behind a confidence score (DESIGN §5: every score says why). */
export function confidenceView(confidence, decision) {
  const score = Number(confidence?.score) || 0;
  // The service's thresholds decide (they are configurable); the colour follows its decision.
  const level = { "auto-resume": "high", prompt: "medium", "new-session": "low" }[decision] || "medium";
  const reasons = confidence?.reasons?.length
    ? confidence.reasons
    : Object.entries(confidence?.factors || {}).map(([k, v]) => `${k}: ${percent(v)}`);
  return h(
    "div",
    { "data-testid": "confidence" },
    h("div", {}, h("strong", {}, `Confidence ${percent(score)}`)),
    h(`div.meter.${level}`, { role: "meter", "aria-valuemin": 0, "aria-valuemax": 100,
      "aria-valuenow": Math.round(score * 100), "aria-label": "Recovery confidence" },
      h("span", { style: `width:${Math.round(score * 100)}%` })),
    h("ul.reasons", { "aria-label": "Why this confidence" }, reasons.map((r) => h("li", {}, r))),
  );
}
