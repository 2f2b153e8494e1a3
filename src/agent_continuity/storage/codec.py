"""Byte formats shared by the stores: checksummed journal lines and documents.

Journal line (one per event, valid JSON Lines, readable with ``cat`` and ``jq``)::

    {"seq":7,"kind":"decision","at":"2026-11-21T10:00:00Z","payload":{...},"crc":"1c291ca3"}

``crc`` is the CRC-32 of the line's bytes without the ``,"crc":"…"`` suffix
(that is, of the event's compact JSON). A line is either whole and valid or
it is damage; there is no third case.

Documents (registry, snapshots, emergency backups) are JSON objects with a
``checksum`` key: ``sha256:`` of the canonical JSON of every other key.
Recovery points are the same document, compact and gzip-compressed; their
JSON is the canonical form itself with ``checksum`` appended as the last key,
so a reader can check the bytes without encoding the document again.

In an encrypted store (:mod:`.envelope`) every function here takes the
store's ``sealer``: a journal line keeps ``seq``, ``kind``, ``at`` and its
``crc`` in the clear (what ordering, torn-write detection and the journal
marks need) and its payload becomes ``{"$aead": "KEYID.…"}``, bound to the
session, number, kind and time; a document becomes ``{"$aead": …}`` plus its
checksum, bound to its kind and owner. ``sealer=None`` is a plaintext store,
where a sealed record is an error (the key is missing), never a silent value.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent_continuity.checksums import canonical as _canonical
from agent_continuity.checksums import compact as _compact
from agent_continuity.checksums import document_checksum as _checksum
from agent_continuity.checksums import load_document as load_document
from agent_continuity.errors import CorruptRecord, InvalidInput, KeyUnavailable
from agent_continuity.model import Event, EventKind, format_time

from .envelope import SEALED, document_context, event_context, table_kind

if TYPE_CHECKING:
    from .envelope import Sealer

_CRC_SUFFIX_LEN = len(',"crc":"00000000"}\n')
_SEALED_PAYLOAD = b',"payload":{"' + SEALED.encode() + b'":"'
_CRC_PREFIX = b',"crc":"'
_SEQ_PREFIX = b'{"seq":'


_CONTAINERS = (dict, list, tuple)


def _require_text_keys(value: Any) -> None:
    """Refuse object keys that are not text: JSON would hand ``1`` back as ``"1"``,
    and ``{1: a, "1": b}`` back as ``{"1": b}``. Iterative, so depth is no limit here."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise InvalidInput(
                        f"object keys must be text, not {key!r} ({type(key).__name__}): "
                        "JSON would give it back changed; convert the key to a string"
                    )
                if isinstance(child, _CONTAINERS):
                    stack.append(child)
        elif isinstance(item, list | tuple):
            stack.extend(child for child in item if isinstance(child, _CONTAINERS))


_KINDS = {kind: kind.value.encode() for kind in EventKind}


def _time_text(at: datetime) -> str:
    """:func:`~agent_continuity.model.format_time`, in half the time for the usual case."""
    if at.tzinfo is UTC and at.microsecond >= 1000:
        # %-formatting: twice as fast here as an f-string with format specs.
        return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
            at.year,
            at.month,
            at.day,
            at.hour,
            at.minute,
            at.second,
            at.microsecond // 1000,
        )
    return format_time(at)


def encode_event(event: Event, sealer: Sealer | None = None, session_id: str = "") -> bytes:
    """One journal line, newline-terminated, for ``event``.

    Args:
        event: The event.
        sealer: The store's sealer when it is encrypted: the payload is sealed,
            bound to ``session_id`` and the event's number, kind and time.
        session_id: The session whose journal the line goes to.

    Raises:
        InvalidInput: If the payload cannot be stored exactly as JSON.
    """
    # Every append runs this, so the envelope is laid out by hand (its keys and
    # values never need escaping) and only the payload goes through the encoder.
    payload = event.payload
    _require_text_keys(payload)
    if sealer is None:
        head = b'{"seq":%d,"kind":"%s","at":"%s","payload":%s' % (
            event.seq,
            _KINDS[event.kind],
            _time_text(event.at).encode(),
            _compact(payload),
        )
    else:
        head = b'{"seq":%d,"kind":"%s","at":"%s"' % (
            event.seq,
            _KINDS[event.kind],
            _time_text(event.at).encode(),
        )
        # Bound to the session and to the line's own number, kind and time, byte for byte.
        token = sealer.seal_token(_compact(payload), event_context(session_id, head))
        head += _SEALED_PAYLOAD + token + b'"}'

    # The checksum covers the event's compact JSON, that is ``head`` closed by "}".
    return head + b',"crc":"%08x"}\n' % zlib.crc32(b"}", zlib.crc32(head))


def _verified_body(line: bytes, location: str) -> bytes:
    """The event's compact JSON from a journal line whose checksum holds.

    Raises:
        CorruptRecord: If the line is torn or fails its checksum.
    """
    # Without its newline the line is one byte shorter; slice instead of copying.
    suffix = _CRC_SUFFIX_LEN if line.endswith(b"\n") else _CRC_SUFFIX_LEN - 1
    if len(line) < suffix + 2 or line[-suffix : -suffix + 8] != _CRC_PREFIX:
        raise CorruptRecord(f"{location}: journal line has no checksum (torn write?)", location)
    body = line[:-suffix] + b"}"
    # Compare the bytes, not the number: "1C29..." is not what encode_event wrote,
    # and a line is either exactly as written or damaged.
    if line[-suffix + 8 : -suffix + 16] != b"%08x" % zlib.crc32(body):
        raise CorruptRecord(f"{location}: journal line fails its checksum", location)
    return body


def cut_short(line: bytes) -> bool:
    """Whether a damaged journal line lacks the checksum every whole line ends with.

    That is what a write cut short by a crash leaves (a torn line); a whole
    line that fails its checksum was damaged after it was written.
    """
    suffix = _CRC_SUFFIX_LEN if line.endswith(b"\n") else _CRC_SUFFIX_LEN - 1
    return len(line) < suffix + 2 or line[-suffix : -suffix + 8] != _CRC_PREFIX


def decode_event(
    line: bytes, location: str = "", sealer: Sealer | None = None, session_id: str = ""
) -> Event:
    """Parse and verify one journal line (with or without its newline).

    Args:
        line: The line.
        location: Where it was read, for messages.
        sealer: The store's sealer when it is encrypted: the payload is opened.
        session_id: The session whose journal holds the line (what it is bound to).

    Raises:
        CorruptRecord: If the line is torn, fails its checksum or is not an event;
            in an encrypted store, also if it is plaintext or fails authentication
            (altered, or moved or swapped from another session, number or kind).
        KeyUnavailable: If it is sealed with a key that is not configured, or
            sealed in a store not known to be encrypted.
    """
    body = _verified_body(line, location)
    payload: Any = None
    if sealer is not None:
        cut = body.find(_SEALED_PAYLOAD)
        if cut > 0 and body.endswith(b'"}}'):
            head = body[:cut]
            token = body[cut + len(_SEALED_PAYLOAD) : -3]
            plain = sealer.open_token(token, event_context(session_id, head), location)
            try:
                payload = json.loads(plain)
            except ValueError:
                raise CorruptRecord(f"{location}: sealed payload is not JSON", location) from None
            event = _event_of_head(head, payload)
            if event is not None:
                return event
            body = head + b"}"
        elif not sealer.accept_plaintext:
            raise CorruptRecord(
                f"{location}: plaintext record in an encrypted store (written without the key, "
                "or injected)",
                location,
            )
    try:
        raw = json.loads(body)
        if payload is None:
            payload = raw["payload"]
            if SEALED in payload and len(payload) == 1:
                raise KeyUnavailable(
                    f"{location}: this journal is encrypted but the store has no encryption "
                    "marker; restore its encryption.json and configure the key"
                )
        # Validating constructor on purpose: pydantic's model_construct is slower.
        return Event(
            seq=int(raw["seq"]),
            kind=EventKind(raw["kind"]),
            at=datetime.fromisoformat(raw["at"]),
            payload=payload,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptRecord(f"{location}: journal line is not an event: {exc}", location) from None


def _event_of_head(head: bytes, payload: Any) -> Event | None:
    """The event whose line begins ``head`` as :func:`encode_event` lays it out, or None.

    A sealed line's payload is parsed on its own; reading the three fields
    before it by their fixed layout spares a second JSON parse per record.
    """
    parts = head.split(b'"')
    # {"seq":7,"kind":"message","at":"2026-12-06T10:00:00.000Z
    if len(parts) != 11 or parts[1] != b"seq" or parts[3] != b"kind" or parts[7] != b"at":
        return None
    digits = parts[2][1:-1]
    if not digits.isdigit() or parts[10] or parts[4] != b":" or parts[8] != b":":
        return None
    try:
        return Event(
            seq=int(digits),
            kind=EventKind(parts[5].decode()),
            at=datetime.fromisoformat(parts[9].decode()),
            payload=payload,
        )
    except ValueError:
        return None


def line_key_id(line: bytes) -> str | None:
    """The key id a journal line's payload is sealed with, or None when it is plaintext."""
    cut = line.find(_SEALED_PAYLOAD)
    if cut < 0:
        return None
    start = cut + len(_SEALED_PAYLOAD)
    return line[start : line.find(b".", start)].decode("ascii", "replace")


def event_seq(line: bytes, location: str = "") -> int:
    """The sequence number of a journal line, its checksum verified, its JSON left alone.

    What a reader needs of the lines it skips (those before a recovery point):
    proof that they are intact and in order, at a fraction of the cost of
    :func:`decode_event`. Lines not laid out by :func:`encode_event` are decoded.

    Raises:
        CorruptRecord: If the line is torn, fails its checksum or is not an event.
    """
    body = _verified_body(line, location)
    if body.startswith(_SEQ_PREFIX):
        end = body.find(b",", len(_SEQ_PREFIX))
        digits = body[len(_SEQ_PREFIX) : end]
        if end > 0 and digits.isdigit() and digits[:1] != b"0":
            return int(digits)
    return decode_event(line, location).seq


def intact_seqs(lines: list[bytes], first: int = 1) -> list[int] | None:
    """The sequence numbers of journal lines (without newlines), if every one is intact.

    The fast path of reading a journal: one tight loop that verifies each
    line's checksum and reads its ``seq`` without decoding the JSON. Returns
    None as soon as a line is damaged or not laid out by :func:`encode_event`;
    the caller then takes the careful path that reports each problem.

    Args:
        lines: The lines, without their newlines.
        first: The number the first line most likely carries (the guess that
            saves reading each number; any other numbering is still read).
    """
    crc32 = zlib.crc32
    cut = _CRC_SUFFIX_LEN - 1  # the suffix without the newline
    start = len(_SEQ_PREFIX)
    seqs: list[int] = []
    append = seqs.append
    for expected, line in enumerate(lines, start=first):
        if line[-cut : 8 - cut] != _CRC_PREFIX:
            return None
        if line[8 - cut : 16 - cut] != b"%08x" % crc32(b"}", crc32(line[:-cut])):
            return None
        # Journals almost always number their lines 1, 2, 3, ...: check that
        # guess in one comparison before reading the number.
        if line.startswith(b'{"seq":%d,' % expected):
            append(expected)
            continue
        if not line.startswith(_SEQ_PREFIX):
            return None
        digits = line[start : line.find(b",", start)]
        if not digits.isdigit():
            return None
        append(int(digits))
    return seqs


def seal_document(
    doc: dict[str, Any], sealer: Sealer | None, kind: str, owner: str = "", *, packed: bool = False
) -> dict[str, Any]:
    """``doc`` sealed for an encrypted store (bound to its ``kind`` and ``owner``), else as is.

    ``packed``: compress the JSON before sealing (ciphertext does not compress;
    what :func:`dump_compressed` stores).
    """
    if sealer is None:
        return doc
    if "checksum" in doc:
        raise InvalidInput("a document may not carry its own 'checksum' key")
    plain = _canonical(doc)
    if packed:
        plain = zlib.compress(plain, _GZIP_LEVEL)
    return sealer.seal(plain, document_context(kind, owner))


def open_document(
    doc: dict[str, Any],
    sealer: Sealer | None,
    kind: str,
    owner: str = "",
    location: str = "",
    *,
    packed: bool = False,
) -> dict[str, Any]:
    """The inverse of :func:`seal_document`, on a document whose checksum was verified.

    Raises:
        CorruptRecord: If it is plaintext in an encrypted store, or fails authentication.
        KeyUnavailable: If it is sealed and the store has no key for it.
    """
    if sealer is None:
        if SEALED in doc and len(doc) <= 2:
            raise KeyUnavailable(
                f"{location}: this record is encrypted but the store has no encryption marker "
                "or key; restore its encryption.json and configure the key"
            )
        return doc
    body = {k: v for k, v in doc.items() if k != "checksum"}
    if packed and sealer.accept_plaintext and SEALED not in body:
        return body  # a plaintext point while the store is being encrypted
    plain = sealer.open(body, document_context(kind, owner), location)
    try:
        opened = json.loads(zlib.decompress(plain) if packed else plain)
    except (ValueError, zlib.error):
        raise CorruptRecord(f"{location}: sealed document is not JSON", location) from None
    if not isinstance(opened, dict):
        raise CorruptRecord(f"{location}: sealed document is not an object", location)
    return opened


def dump_row(doc: dict[str, Any], sealer: Sealer | None, table: str, key: object) -> bytes:
    """A SQL store's document column of ``table``'s row ``key``.

    Sealed or not as :func:`.envelope.table_kind` says, so every SQL store
    (SQLite, PostgreSQL) seals the same tables the same way.
    """
    kind, owner = table_kind(table, key)
    return dump_document(doc, sealer if kind else None, kind, owner)


def load_row(
    data: bytes, location: str, sealer: Sealer | None, table: str, key: object
) -> dict[str, Any]:
    """The inverse of :func:`dump_row`: checksum verified, then opened if the table is sealed."""
    kind, owner = table_kind(table, key)
    return load_sealed_document(data, location, sealer if kind else None, kind, owner)


def seal_blob(data: bytes, sealer: Sealer | None, kind: str, owner: str) -> bytes:
    """Opaque bytes (a file-state chunk) sealed for an encrypted store, else as they are."""
    if sealer is None:
        return data
    return _compact(sealer.seal(data, document_context(kind, owner)))


def open_blob(data: bytes, sealer: Sealer | None, kind: str, owner: str, location: str) -> bytes:
    """The inverse of :func:`seal_blob`.

    Bytes that do not open (plaintext in an encrypted store, altered, moved)
    come back as ``b""``, which fails the caller's own integrity check and is
    reported as damage there.

    Raises:
        KeyUnavailable: If they are sealed and the store has no key for them.
    """
    sealed = data.startswith(b'{"' + SEALED.encode())
    if sealer is None:
        if sealed:
            raise KeyUnavailable(
                f"{location}: this record is encrypted but the store has no encryption marker "
                "or key; restore its encryption.json and configure the key"
            )
        return data
    if not sealed:
        return data if sealer.accept_plaintext else b""
    try:
        return sealer.open(json.loads(data), document_context(kind, owner), location)
    except (CorruptRecord, ValueError):
        return b""


def dump_document(
    doc: dict[str, Any], sealer: Sealer | None = None, kind: str = "", owner: str = ""
) -> bytes:
    """Pretty JSON of ``doc`` with a ``checksum`` key added (sealed first when ``sealer``)."""
    if "checksum" in doc:
        raise InvalidInput("a document may not carry its own 'checksum' key")
    doc = seal_document(doc, sealer, kind, owner)
    sealed = dict(doc)
    sealed["checksum"] = _checksum(doc)
    try:
        return (_layout(sealed, 0) + "\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("text contains a lone surrogate character") from exc


_PRETTY_DEPTH = 3


def _layout(value: Any, depth: int) -> str:
    # json.dumps(indent=...) falls back to the pure-Python encoder, about ten
    # times slower; a registry of a thousand sessions took 60 ms to write. So
    # only the outer levels are laid out for people (one session per line in
    # the registry) and everything deeper goes through the C encoder.
    if not isinstance(value, dict) or not value or depth >= _PRETTY_DEPTH:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
    pad = "  " * (depth + 1)
    items = ",\n".join(
        f"{pad}{json.dumps(str(key), ensure_ascii=False)}: {_layout(item, depth + 1)}"
        for key, item in value.items()
    )
    return "{\n" + items + "\n" + "  " * depth + "}"


_SEAL = b',"checksum":"sha256:'
_SEAL_LEN = len(_SEAL) + 64 + len(b'"}')
# Recovery points are a few KiB of JSON, written on every save. A 16 KiB window
# and a smaller hash table halve zlib's set-up cost (which dominates at that
# size), and level 1 halves the rest; the output is ~8% larger than level 6.
_GZIP_LEVEL, _GZIP_WBITS, _GZIP_MEM_LEVEL = 1, 16 + 14, 6


def dump_compressed(
    doc: dict[str, Any], sealer: Sealer | None = None, kind: str = "", owner: str = ""
) -> bytes:
    """Gzip-compressed, checksummed compact JSON of ``doc``.

    The JSON is the canonical form (sorted keys) the checksum covers, with the
    ``checksum`` key appended last, so it is encoded once and a reader can
    verify the bytes as they are (:func:`load_compressed`).

    Raises:
        InvalidInput: If ``doc`` cannot be stored exactly as JSON, or has a ``checksum`` key.
    """
    if "checksum" in doc:
        raise InvalidInput("a document may not carry its own 'checksum' key")
    doc = seal_document(doc, sealer, kind, owner, packed=True)
    body = _canonical(doc)
    digest = hashlib.sha256(body).hexdigest().encode()
    if body == b"{}":
        sealed = b'{"checksum":"sha256:' + digest + b'"}'
    else:
        sealed = body[:-1] + _SEAL + digest + b'"}'
    gz = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS, _GZIP_MEM_LEVEL)
    return gz.compress(sealed) + gz.flush()


def load_compressed(
    data: bytes,
    location: str = "",
    sealer: Sealer | None = None,
    kind: str = "",
    owner: str = "",
) -> dict[str, Any]:
    """Inverse of :func:`dump_compressed`.

    Raises:
        CorruptRecord: If the gzip stream or the checksum is damaged, or (with
            ``sealer``) the record is plaintext or fails authentication.
        KeyUnavailable: If it is sealed and the store has no key for it.
    """
    doc = read_compressed(data, location)
    return open_document(doc, sealer, kind, owner, location, packed=True)


def load_sealed_document(
    data: bytes,
    location: str = "",
    sealer: Sealer | None = None,
    kind: str = "",
    owner: str = "",
) -> dict[str, Any]:
    """Inverse of :func:`dump_document` with a sealer: verify the checksum, then open."""
    return open_document(load_document(data, location), sealer, kind, owner, location)


def read_compressed(data: bytes, location: str = "") -> dict[str, Any]:
    """The document :func:`dump_compressed` wrote, checksum verified, still sealed if it was.

    Raises:
        CorruptRecord: If the gzip stream or the checksum is damaged.
    """
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptRecord(f"{location}: compressed record is damaged ({exc})", location) from None
    # What dump_compressed writes is the canonical JSON the checksum covers, plus
    # the checksum: hashing those bytes proves them intact without encoding the
    # document again. Anything else (a record written before the JSON was
    # canonical, or damaged bytes) takes the general path, which says what is wrong.
    if len(raw) > _SEAL_LEN and raw[-_SEAL_LEN : -_SEAL_LEN + len(_SEAL)] == _SEAL:
        body = raw[:-_SEAL_LEN] + b"}"
        if hashlib.sha256(body).hexdigest().encode() == raw[-66:-2]:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                return doc
    return load_document(raw, location)
