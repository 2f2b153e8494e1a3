// The research workspace: the conversation, the tasks with their status, the
// decisions and the notes of one session, each saved through the API as it happens.

import { api, ApiError } from "./api.js";
import { badge, h, notice } from "./ui.js";

const STATUSES = [
  ["open", "To do"],
  ["in-progress", "In progress"],
  ["blocked", "Blocked"],
  ["done", "Done"],
  ["cancelled", "Cancelled"],
];
const ROLE_NAMES = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };
const NOTES_DELAY_MS = 800;

export class Workspace {
  /**
   * @param {HTMLElement} root Where the workspace is drawn.
   * @param {object} details The session as GET /api/sessions/{id} returns it.
   * @param {{onLost: Function}} hooks onLost(error) runs when the session stops being writable.
   */
  constructor(root, details, hooks) {
    this.root = root;
    this.details = details;
    this.id = details.session.id;
    this.hooks = hooks;
    this.pending = 0;
    this.notesTimer = null;
    this.savedNotes = details.session.context?.conversationSummary || "";
  }

  render() {
    const s = this.details.session;
    this.messages = h("ol.messages", { id: "messages", "aria-label": "Conversation",
      "aria-live": "polite", "data-testid": "messages" });
    this.input = h("textarea", { id: "composer-input", rows: 2, maxlength: 100000,
      placeholder: "Ask the assistant, or note what you found…",
      "aria-describedby": "composer-hint" });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.sendButton = h("button.button.primary", { type: "submit" }, "Send");
    const composer = h(
      "form.composer",
      { onsubmit: (event) => { event.preventDefault(); this.send(); }, "aria-label": "Send a message" },
      h("label.visually-hidden", { for: "composer-input" }, "Message"),
      this.input,
      this.sendButton,
    );
    this.saveState = h("span.save-state", { id: "save-state", "aria-live": "polite" }, "All changes saved");

    this.taskList = h("ul.list", { id: "tasks", "aria-label": "Tasks", "data-testid": "tasks" });
    this.decisionList = h("ul.list", { id: "decisions", "aria-label": "Decisions",
      "data-testid": "decisions" });
    this.notes = h("textarea", { id: "notes", maxlength: 10000,
      placeholder: "Sources, findings, open questions… (saved as you type)" });
    this.notes.value = this.savedNotes;
    this.notes.addEventListener("input", () => this.scheduleNotes());
    this.notes.addEventListener("blur", () => this.flushNotes());

    const conversation = h(
      "section.panel.conversation",
      { "aria-labelledby": "conversation-title" },
      h("h2", { id: "conversation-title" }, "Conversation"),
      this.messages,
      composer,
      h("p.hint", { id: "composer-hint" }, "Enter sends · Shift+Enter starts a new line"),
    );
    const side = h(
      "div.side",
      {},
      h("section.panel", { "aria-labelledby": "tasks-title" },
        h("h2", { id: "tasks-title" }, "Tasks"),
        this.taskList,
        this.inlineForm("new-task", "New task", "Add a task…", "Add", (text) => this.addTask(text))),
      h("section.panel", { "aria-labelledby": "decisions-title" },
        h("h2", { id: "decisions-title" }, "Decisions"),
        this.decisionList,
        this.inlineForm("new-decision", "New decision", "Record a decision…", "Record",
          (text) => this.addDecision(text))),
      h("section.panel", { "aria-labelledby": "notes-title" },
        h("h2", { id: "notes-title" }, h("label", { for: "notes" }, "Notes")),
        this.notes),
    );
    const title = s.context?.currentTask || "Research session";
    this.root.replaceChildren(
      h("div.session-bar", {},
        h("h1", { id: "workspace-title" }, title),
        badge(s.status),
        h("span.mono", { "data-testid": "session-id", title: "Session id" }, s.id),
        this.saveState),
      h("div.workspace", { "data-testid": "workspace" }, conversation, side),
    );
    this.renderMessages();
    this.renderSide();
  }

  inlineForm(id, label, placeholder, action, submit) {
    const input = h("input", { id, type: "text", placeholder, maxlength: 10000, autocomplete: "off" });
    return h(
      "form.inline-form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          const text = input.value.trim();
          if (!text) return;
          input.value = "";
          await submit(text);
          input.focus();
        },
      },
      h("label.visually-hidden", { for: id }, label),
      input,
      h("button.button", { type: "submit" }, action),
    );
  }

  renderMessages() {
    const conversation = this.details.conversation || this.details.recentMessages || [];
    if (!conversation.length) {
      this.messages.replaceChildren(h("li.empty", { id: "no-messages" },
        "No messages yet. Say what you are researching to begin."));
      return;
    }
    this.messages.replaceChildren(...conversation.map((m) => this.messageItem(m)));
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  messageItem(m) {
    const role = ROLE_NAMES[m.role] ? m.role : "system";
    return h(`li.message.${role}`, { "data-seq": m.seq, "data-role": role },
      h("span.who", {}, ROLE_NAMES[role]), m.text);
  }

  appendMessage(m) {
    this.messages.querySelector("#no-messages")?.remove();
    this.messages.append(this.messageItem(m));
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  renderSide() {
    const tasks = this.details.tasks || [];
    this.taskList.replaceChildren(
      ...(tasks.length ? tasks.map((t) => this.taskItem(t)) : [h("li.empty", {}, "No tasks yet.")]),
    );
    const decisions = this.details.session.context?.keyDecisions || [];
    this.decisionList.replaceChildren(
      ...(decisions.length
        ? decisions.map((d) => h("li.decision", {}, d))
        : [h("li.empty", {}, "No decisions yet.")]),
    );
  }

  taskItem(task) {
    const name = task.title || task.id;
    const selectId = `task-status-${cssId(task.id)}`;
    const select = h("select", { id: selectId, "aria-label": `Status of ${name}` },
      STATUSES.map(([value, label]) => h("option", { value, selected: task.status === value }, label)));
    select.addEventListener("change", () => this.setTaskStatus(task, select.value));
    const current = this.details.session.context?.currentTask === task.id;
    return h(`li.task.${task.status}`, { "data-task": task.id, "data-status": task.status,
      "aria-current": current ? "true" : null },
      h("span.task-title", {}, name, current ? h("span.current-mark", {}, " · current") : null), select);
  }

  // -- writing: every change is durable when its request returns ------------

  async write(what, action) {
    this.pending += 1;
    this.saveState.className = "save-state";
    this.saveState.textContent = "Saving…";
    try {
      const result = await action();
      return result;
    } catch (err) {
      this.saveState.className = "save-state error";
      this.saveState.textContent = `Not saved: ${what}`;
      if (err instanceof ApiError && (err.status === 404 || err.status === 409)) {
        this.hooks.onLost(err);
      } else {
        notice(`Could not save ${what}.`, { kind: "bad", detail: err.message, id: "save-error" });
      }
      throw err;
    } finally {
      this.pending -= 1;
      if (this.pending === 0 && !this.saveState.classList.contains("error")) {
        const at = new Date().toLocaleTimeString(undefined, { timeStyle: "short" });
        this.saveState.textContent = `All changes saved · ${at}`;
      }
    }
  }

  async send() {
    const text = this.input.value.trim();
    if (!text || this.sendButton.disabled) return;
    this.sendButton.disabled = true;
    let recorded;
    try {
      recorded = await this.write("the message", () => api.message(this.id, "user", text));
    } catch (err) {
      // The text stays in the box so nothing typed is lost.
      this.sendButton.disabled = false;
      this.input.focus();
      return;
    }
    this.input.value = "";
    this.appendMessage({ seq: recorded.seq, role: "user", text });
    const thinking = h("li.message.assistant.thinking", { "aria-busy": "true" },
      h("span.who", {}, "Assistant"), "Thinking…");
    this.messages.append(thinking);
    try {
      // The message is durable before the assistant is asked: a slow or failing
      // responder never costs what the user typed.
      const answer = await api.reply(this.id);
      thinking.replaceWith(this.messageItem({ seq: answer.seq, role: "assistant", text: answer.text }));
      this.messages.scrollTop = this.messages.scrollHeight;
      await this.refresh();
    } catch (err) {
      thinking.remove();
      if (err instanceof ApiError && (err.status === 404 || err.status === 409)) this.hooks.onLost(err);
      else notice("The assistant did not answer; your message is saved.", {
        kind: "warn", detail: err.message, id: "reply-error" });
    } finally {
      this.sendButton.disabled = false;
      this.input.focus();
    }
  }

  async addTask(title) {
    const known = (this.details.tasks || []).find((t) => t.id === title || t.title === title);
    if (known) {
      notice(`"${title}" is already a task.`, { kind: "warn", id: "task-exists" });
      return;
    }
    // A task is also a next step, and the first one is the current task: what the
    // recovery summary, its confidence and the resume point are built from.
    // The task's words are its id: the summary then names it once ("Task X (open)").
    const fields = { tasks: [{ id: title, status: "open" }], next: [title] };
    if (!this.details.session.context?.currentTask) fields.task = title;
    await this.write("the task", () => api.update(this.id, fields)).catch(() => null);
    await this.refresh();
  }

  async setTaskStatus(task, status) {
    const fields = { tasks: [{ id: task.id, status }] };
    if (status === "done") fields.complete = [task.id];
    if (status === "in-progress") {
      fields.task = task.id;
      fields.step = task.id;
    }
    await this.write("the task status", () => api.update(this.id, fields)).catch(() => null);
    await this.refresh();
    this.taskList.querySelector(`#task-status-${cssId(task.id)}`)?.focus();
  }

  async addDecision(text) {
    await this.write("the decision", () => api.update(this.id, { decisions: [text] })).catch(() => null);
    await this.refresh();
  }

  scheduleNotes() {
    clearTimeout(this.notesTimer);
    this.saveState.textContent = "Editing notes…";
    this.notesTimer = setTimeout(() => this.flushNotes(), NOTES_DELAY_MS);
  }

  async flushNotes() {
    clearTimeout(this.notesTimer);
    const text = this.notes.value;
    if (text === this.savedNotes) {
      if (!this.pending) this.saveState.textContent = "All changes saved";
      return;
    }
    this.savedNotes = text;
    // Blank notes are saved as none at all (the service keeps no whitespace-only text).
    const summary = text.trim() ? text : "";
    await this.write("the notes", () => api.update(this.id, { summary })).catch(() => {
      this.savedNotes = null; // try again on the next edit
    });
  }

  /** Reads the session again so the side panels show what the store holds. */
  async refresh() {
    try {
      this.details = await api.session(this.id);
    } catch (err) {
      return;
    }
    this.renderSide();
    const title = this.details.session.context?.currentTask || "Research session";
    const heading = this.root.querySelector("#workspace-title");
    if (heading && heading.textContent !== title) heading.textContent = title;
  }
}

function cssId(text) {
  return Array.from(text, (c) => (/[a-z0-9]/i.test(c) ? c : `_${c.charCodeAt(0).toString(16)}`)).join("");
}
