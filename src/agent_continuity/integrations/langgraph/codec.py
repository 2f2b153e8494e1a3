"""How ContinuitySaver writes LangGraph values into journal events, as JSON.

Plain JSON values (None, bool, int, finite float, str, list, and dicts whose
keys are text not starting with ``$``) are written as they are, so a journal
stays readable; LangChain messages as their non-default fields; anything else
through the saver's serializer (LangGraph's own), base64-encoded under a
``$s`` key. Every other encoded form is a dict with one ``$`` key, so a plain
value is never mistaken for one.

A message is written once per session, as a ``message`` journal event that
``continuity show`` and ``continuity recover`` read as the conversation; every
later appearance of the same object refers to that event (``$r``: its sequence
number; ``$g``: the N-th message event of the group being written), with a
patch when the object changed since (LangGraph gives a message its id only when
it reaches the ``messages`` channel). That keeps a turn's message on disk once,
not once per channel, write and checkpoint it passes through.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

import langchain_core.messages as lc_messages
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.base import SerializerProtocol

#: LangChain message types that become conversation messages, and their role.
ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
# The class a role's message usually has; written only when it is another.
_USUAL = {
    "user": "HumanMessage",
    "assistant": "AIMessage",
    "system": "SystemMessage",
    "tool": "ToolMessage",
}

_SCALARS = (str, int, bool, type(None))


def plain_key(key: object) -> bool:
    """Whether a dict key can be written as a JSON key as it is."""
    return type(key) is str and not key.startswith("$")


def same(a: Any, b: Any) -> bool:
    """Exact equality of two encoded (JSON) values: ``True`` is not ``1`` here."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def _special(value: Any) -> bool:
    return type(value) is dict and any(k.startswith("$") for k in value)


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What turns the encoded dict ``old`` into ``new`` (nested dicts are diffed too)."""
    changed: dict[str, Any] = {}
    for key, value in new.items():
        if key in old and same(old[key], value):
            continue
        before = old.get(key)
        if (
            type(before) is dict
            and type(value) is dict
            and not _special(before)
            and not _special(value)
        ):
            changed[key] = {"$p": diff(before, value)}
        else:
            changed[key] = value
    gone = [key for key in old if key not in new]
    out: dict[str, Any] = {}
    if changed:
        out["s"] = changed
    if gone:
        out["d"] = gone
    return out


def patch(old: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """Apply a :func:`diff` to ``old``; a new dict."""
    new = dict(old)
    for key in change.get("d", ()):
        new.pop(key, None)
    for key, value in change.get("s", {}).items():
        if type(value) is dict and "$p" in value:
            new[key] = patch(old.get(key) or {}, value["$p"])
        else:
            new[key] = value
    return new


class MessageRefs:
    """The messages one session has written, for referring back to them (writer side).

    Keyed by object identity: LangGraph passes the same message object from the
    input to the task writes to the ``messages`` channel.
    """

    def __init__(self) -> None:
        # id(message) -> (the message, its event's seq, its encoded form then)
        self.written: dict[int, tuple[object, int, dict[str, Any]]] = {}
        # The message events of the group being built: (message, encoded form).
        self.pending: list[tuple[object, dict[str, Any]]] = []

        # Messages referred to with a patch: (message, seq, form now), kept as the
        # base of the next reference once the group is written (the reader does the same).
        self.patched: list[tuple[object, int, dict[str, Any]]] = []

    def committed(self, seqs: list[int]) -> None:
        """The group was appended; its message events got these sequence numbers."""
        for message, seq, form in self.patched:
            self.written[id(message)] = (message, seq, form)
        for (message, form), seq in zip(self.pending, seqs, strict=True):
            self.written[id(message)] = (message, seq, form)
        self.pending = []
        self.patched = []

    def abandon(self) -> None:
        """The group was not written: forget what it would have added."""
        self.pending = []
        self.patched = []


class Encoder:
    """Values to JSON; messages to message events when ``refs`` is given."""

    def __init__(self, serde: SerializerProtocol, refs: MessageRefs | None = None) -> None:
        self._serde = serde
        self._refs = refs

    def value(self, value: Any) -> Any:
        """The JSON form of ``value`` (see the module documentation)."""
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is float and math.isfinite(value):
            return value
        if kind is list:
            return [self.value(item) for item in value]
        if kind is dict and all(plain_key(k) for k in value):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, BaseMessage) and _message_class(kind.__name__) is kind:
            return self._message(value)
        typed, data = self._serde.dumps_typed(value)
        return {"$s": [typed, base64.b64encode(data).decode("ascii")]}

    def form(self, message: BaseMessage) -> dict[str, Any]:
        """A message's class and non-default fields, encoded."""
        pure = Encoder(self._serde)
        return {
            "c": type(message).__name__,
            "d": pure.value(message.model_dump(exclude_defaults=True)),
        }

    def _message(self, message: BaseMessage) -> dict[str, Any]:
        form = self.form(message)
        refs = self._refs
        if refs is None or message.type not in ROLES:
            return {"$m": form}
        known = refs.written.get(id(message))
        if known is not None and known[0] is message:
            ref = _ref("$r", known[1], known[2], form)
            if "p" in ref:
                refs.patched.append((message, known[1], form))
            return ref
        for index, (pending, before) in enumerate(refs.pending):
            if pending is message:
                return _ref("$g", index, before, form)
        refs.pending.append((message, form))
        return {"$g": len(refs.pending) - 1}


def _ref(key: str, where: int, before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    if same(before, now):
        return {key: where}
    return {key: where, "p": diff(before["d"], now["d"])}


def message_payload(form: dict[str, Any], role: str) -> dict[str, Any]:
    """The payload of the ``message`` event that holds a message's encoded ``form``."""
    fields = dict(form["d"])
    content = fields.get("content", "")
    if type(content) is str:
        del fields["content"]
        text = content
    else:  # content blocks: kept whole in the fields, their text shown
        text = " ".join(
            str(block.get("text", "")) for block in content if isinstance(block, dict)
        ).strip()
    lg: dict[str, Any] = {}
    if form["c"] != _USUAL[role]:
        lg["c"] = form["c"]
    if fields:
        lg["d"] = fields
    return {"role": role, "text": text, "lg": lg}


def form_of_event(payload: dict[str, Any]) -> dict[str, Any]:
    """The encoded form of the message a ``message`` event written by the saver holds."""
    lg = payload["lg"]
    fields = dict(lg.get("d", {}))
    fields.setdefault("content", payload.get("text", ""))
    return {"c": lg.get("c") or _USUAL[str(payload.get("role"))], "d": fields}


class Decoder:
    """JSON back to values. ``message(seq)`` gives a message event's encoded form."""

    def __init__(
        self,
        serde: SerializerProtocol,
        message: Callable[[int], dict[str, Any]] = lambda seq: {},
        group_first: int = 0,
    ) -> None:
        self._serde = serde
        self._message = message
        self._first = group_first
        #: The messages referred to with a patch: seq -> their form now (see MessageRefs).
        self.patched: dict[int, dict[str, Any]] = {}

    def value(self, data: Any) -> Any:
        """The value that :meth:`Encoder.value` wrote as ``data``."""
        kind = type(data)
        if kind is list:
            return [self.value(item) for item in data]
        if kind is not dict:
            return data
        if not _special(data):
            return {k: self.value(v) for k, v in data.items()}
        if "$s" in data:
            typed, text = data["$s"]
            return self._serde.loads_typed((typed, base64.b64decode(text)))
        if "$m" in data:
            return self.build(data["$m"])
        if "$r" in data or "$g" in data:
            seq = data["$r"] if "$r" in data else self._first + data["$g"]
            form = self._message(seq)
            if "p" in data:
                form = {"c": form["c"], "d": patch(form["d"], data["p"])}
                self.patched[seq] = form
            return self.build(form)
        raise ValueError(f"unknown encoded value {sorted(data)}")

    def build(self, form: dict[str, Any]) -> BaseMessage:
        """A message from its encoded form."""
        cls = _message_class(str(form["c"]))
        if cls is None:
            raise ValueError(f"{form['c']!r} is not a LangChain message class")
        fields = Decoder(self._serde).value(form["d"])
        message: BaseMessage = cls(**fields)
        return message


def _message_class(name: str) -> type[BaseMessage] | None:
    # Only LangChain's own message classes are rebuilt by name; anything else
    # goes through the serializer and its allow-list.
    found = getattr(lc_messages, name, None)
    if isinstance(found, type) and issubclass(found, BaseMessage):
        return found
    return None
