"""Import a coding agent's transcript files into the session that agent session maps to.

The session an agent's session feeds is found by the agent's name and its own
session id, both on the session's ``agent`` (see
:class:`~agent_continuity.model.AgentInfo`); the hooks write the same two, so
hooks and imports of one agent session land in one of ours. With none yet, a
session is started for it.

Where an import stopped lives in that session's journal: every imported
event carries its ``imported`` key (unique in the agent's session, the same
on every read), and the same atomic append group ends with a ``state`` event
holding the file's ``importCursor`` (byte offset, line, fingerprint). The
cursor and the events cannot disagree after a crash, and a file that was
rewritten (another fingerprint, or shorter than the cursor) is read again
from the top while its keys keep it from adding anything twice.

An ended or interrupted session is never written to: what is new then goes to
a session that continues it (``recoveredFrom``), and the keys of the whole
chain count as imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from agent_continuity import lifecycle
from agent_continuity.errors import InvalidInput
from agent_continuity.model import AgentInfo, EventDraft, EventKind, SessionRecord, SessionStatus
from agent_continuity.transcripts import claude, codex, gemini
from agent_continuity.transcripts.reader import Damaged, fingerprint, read_from

if TYPE_CHECKING:
    from agent_continuity.live import LiveSession
    from agent_continuity.runtime import Runtime

#: The agents whose transcripts can be imported, by the name the command takes.
AGENTS: dict[str, ModuleType] = {"claude": claude, "codex": codex, "gemini": gemini}
SESSION_TYPE = "coding-agent"
# How far back a continuation chain is followed for the keys already imported.
_CHAIN = 50


@dataclass
class ImportReport:
    """What an import added: ``continuity import --json``."""

    session_id: str | None = None
    imported: int = 0
    skipped: int = 0
    damaged: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """The ``--json`` object; each damaged line also names its ``file``."""
        return {
            "sessionId": self.session_id,
            "imported": self.imported,
            "skipped": self.skipped,
            "damaged": list(self.damaged),
            "sessions": list(self.sessions),
        }


@dataclass
class _Target:
    """The session one agent session's files go to, and what it already holds."""

    record: SessionRecord | None
    keys: set[str]
    cursors: dict[str, dict[str, Any]]
    live: LiveSession | None = None


def import_transcripts(
    rt: Runtime, agent: str, paths: list[str | Path], session_id: str | None = None
) -> ImportReport:
    """Import the transcripts ``paths`` written by ``agent``.

    Args:
        rt: The runtime.
        agent: ``claude``, ``codex`` or ``gemini``.
        paths: Transcript files (a Claude Code transcript brings its subagents' files).
        session_id: Import into this session instead of the one the agent session maps to.

    Returns:
        The counts, the damaged lines and the session(s) written to.

    Raises:
        InvalidInput: If the agent is unknown or a path is not a readable file.
        SessionNotFound: If ``session_id`` names no session.
    """
    module = AGENTS.get(agent)
    if module is None:
        raise InvalidInput(f"agent must be one of {', '.join(AGENTS)}, not {agent!r}")
    files = [Path(p).expanduser().resolve() for p in paths]
    for path in files:
        if not path.is_file():
            raise InvalidInput(f"{path} is not a transcript file; give the .jsonl the agent wrote")
    report = ImportReport()
    # A session whose owner died (the agent, killed with its hooks' lease) is
    # marked interrupted now, so it is continued below instead of refused on attach.
    lifecycle.detect_interruptions(rt)
    given = lifecycle.get(rt, session_id) if session_id else None
    targets: dict[str, _Target] = {}
    for path in files:
        agent_sid = module.session_of(path)
        target_key = given.id if given is not None else agent_sid
        if target_key not in targets:
            record = given if given is not None else _mapped(rt, agent, agent_sid)
            targets[target_key] = _known(rt, record)
        target = targets[target_key]
        for source in [path, *module.companions(path)]:
            _import_file(rt, module, agent_sid, source, target, report)
        if target.record is not None:
            report.session_id = target.record.id
            if target.record.id not in report.sessions:
                report.sessions.append(target.record.id)
    return report


def _mapped(rt: Runtime, agent: str, agent_sid: str) -> SessionRecord | None:
    """The newest session of this agent session, if any."""
    found = [
        r
        for r in lifecycle.sessions(rt)
        if r.agent.name == agent and r.agent.session_id == agent_sid
    ]
    return found[-1] if found else None


def _known(rt: Runtime, record: SessionRecord | None) -> _Target:
    """The keys imported into ``record`` and the sessions it continues, and its cursors."""
    keys: set[str] = set()
    cursors: dict[str, dict[str, Any]] = {}
    current = record
    for _ in range(_CHAIN):
        if current is None:
            break
        for event in reversed(lifecycle.events(rt, current.id)):
            key = event.payload.get("imported")
            if isinstance(key, str):
                keys.add(key)
            cursor = event.payload.get("importCursor")
            if event.kind is EventKind.STATE and isinstance(cursor, dict):
                cursors.setdefault(str(cursor.get("file")), cursor)  # newest first
        parent = current.recovered_from
        current = lifecycle.get(rt, parent) if parent else None
    return _Target(record, keys, cursors)


def _import_file(
    rt: Runtime,
    module: ModuleType,
    agent_sid: str,
    path: Path,
    target: _Target,
    report: ImportReport,
) -> None:
    cursor = target.cursors.get(str(path))
    offset = line = 0
    if cursor is not None:
        at = int(cursor.get("offset", 0))
        if at <= path.stat().st_size and cursor.get("fingerprint") == fingerprint(path, at):
            offset, line = at, int(cursor.get("line", 0))
    chunk = read_from(path, offset, line)
    # A subagent's lines are keyed by its own file: they share the main session's id.
    file_key = path.stem if path.stem.startswith("agent-") else f"{module.NAME}:{agent_sid}"
    parsed = module.parse(chunk.lines, file_key)
    report.skipped += parsed.skipped
    damage = sorted([*chunk.damaged, *parsed.damaged], key=lambda d: d.line)
    report.damaged += [_damage(d, path) for d in damage]
    now = rt.now()
    drafts: list[EventDraft] = []
    for entry in parsed.entries:
        if entry.key in target.keys:
            continue
        target.keys.add(entry.key)
        payload = {**entry.payload, "imported": entry.key}
        drafts.append(EventDraft(kind=entry.kind, at=entry.at or now, payload=payload))
    if not drafts:
        return  # nothing new: nothing written, not even the cursor (its lines add nothing)
    new_cursor = {
        "file": str(path),
        "offset": chunk.end,
        "line": chunk.end_line,
        "fingerprint": fingerprint(path, chunk.end),
        "agent": module.NAME,
        "agentSessionId": agent_sid,
    }
    drafts.append(EventDraft(kind=EventKind.STATE, at=now, payload={"importCursor": new_cursor}))
    live = _writer(rt, module, agent_sid, target)
    live.append_group(drafts)
    target.cursors[str(path)] = new_cursor
    report.imported += len(drafts) - 1


def _writer(rt: Runtime, module: ModuleType, agent_sid: str, target: _Target) -> LiveSession:
    """A handle on the target session, started (or continued) if it cannot take writes."""
    if target.live is not None:
        return target.live
    record = target.record
    if record is not None and record.status is SessionStatus.ACTIVE:
        target.live = lifecycle.attach(rt, record.id)
    else:
        agent = (
            record.agent
            if record is not None and record.agent.name
            else AgentInfo(type=module.AGENT_TYPE, name=module.NAME, session_id=agent_sid)
        )
        target.live = lifecycle.start(
            rt,
            type=record.type if record is not None else SESSION_TYPE,
            agent=agent,
            owned_by_process=False,
            auto_save=False,
            recovered_from=record.id if record is not None else None,
        )
    target.record = target.live.record
    return target.live


def _damage(damaged: Damaged, path: Path) -> dict[str, Any]:
    return {**damaged.to_wire(), "file": str(path)}
