"""Reading a journal from a SQL store: every row checked, every damage reported.

A row holds one journal line exactly as the files store writes it, checksum
included, keyed by the journal's small integer and the event's number.

Rows 1..N joined are therefore the bytes a files journal of those events
would hold, and a recovery point saved by the journal's writer carries the
same :class:`~.journal_file.JournalMark` (their CRC-32) as a files point: the
writer keeps a running CRC of the rows it knows intact (appended itself, or
read clean), see :class:`JournalMarks`. A reader of the events after such a
point whose rows 1..N give the same CRC, one line per row, skips checking
them one by one; any other rows take the check line by line, so damage
before a point is still found and reported.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence
from datetime import date
from operator import itemgetter
from typing import TYPE_CHECKING

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord, InvalidIdentifier

from .. import codec
from ..base import JournalRead
from ..index import missing_journal_read
from ..journal_file import JournalMark, mark_for_read
from .repair import damage_at
from .statements import JOURNAL

if TYPE_CHECKING:
    from .store import SqlStore

_MAX_RUNNING = 10_000  # journals whose running mark a handle keeps
_MAX_READ = 10_000  # marks of the points a handle read
_EMPTY = JournalMark(0, 0, 0)  # a journal with no rows yet (the CRC-32 of no bytes is 0)
_last_byte = itemgetter(-1)


class JournalMarks:
    """What one store handle knows of its journals' beginnings.

    Two kinds of :class:`~.journal_file.JournalMark`:

    - the *running* mark of each journal this handle writes: rows 1..N as it
      knows them intact, because it read them clean or appended them itself.
      ``save_point`` embeds it in a point at N. It is dropped whenever this
      handle's view may be stale (an append that found the journal moved, a
      lease taken or given up, a repair, any error); when unsure, no mark.
    - the marks of the points this handle loaded, which ``read_events`` uses.

    A mark only ever claims bytes that were intact events 1..N, and a reader
    compares it with the rows it finds: a stale or wrong mark only costs the
    shortcut (the rows are then checked one by one), it never hides damage.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, JournalMark] = {}
        self._read: dict[str, dict[int, JournalMark]] = {}
        self._read_count = 0

    def running(self, session_id: str) -> JournalMark | None:
        """The journal's rows as this handle knows them intact, if it does."""
        return self._running.get(session_id)

    def take(self, session_id: str) -> JournalMark | None:
        """The running mark, forgotten until the caller puts one back (an append in flight)."""
        with self._lock:
            return self._running.pop(session_id, None)

    def forget(self, session_id: str | None = None) -> None:
        """Drop the running mark of one journal, or of all of them."""
        with self._lock:
            if session_id is None:
                self._running.clear()
            else:
                self._running.pop(session_id, None)

    def started(self, session_id: str, line: bytes) -> None:
        """This handle created the journal with ``line``, event 1."""
        self.appended(session_id, _EMPTY, 0, [line])

    def appended(
        self, session_id: str, known: JournalMark | None, last: int, lines: Sequence[bytes]
    ) -> None:
        """This handle committed ``lines`` as the events after ``last``.

        The running mark becomes ``known`` extended by them if ``known``
        covered exactly events 1..``last``; otherwise it is forgotten.
        """
        if known is None or known.seq != last or not lines:
            self.forget(session_id)
            return
        data = b"".join(lines)
        crc = zlib.crc32(data, known.crc)
        self._keep(session_id, JournalMark(last + len(lines), known.size + len(data), crc))

    def seen(self, session_id: str, mark: JournalMark, last_seq: int | None) -> None:
        """A clean read found ``mark``: the running mark if the journal ends where the
        writer believes it does (``last_seq``, its last append)."""
        if last_seq == mark.seq:
            self._keep(session_id, mark)

    def _keep(self, session_id: str, mark: JournalMark) -> None:
        with self._lock:
            if len(self._running) >= _MAX_RUNNING and session_id not in self._running:
                self._running.clear()  # only a shortcut: a server of many sessions starts over
            self._running[session_id] = mark

    def remember(self, session_id: str, mark: JournalMark) -> None:
        """The mark of a point read (or saved) here, for the next read after it."""
        with self._lock:
            if self._read_count >= _MAX_READ:
                self._read.clear()
                self._read_count = 0
            marks = self._read.setdefault(session_id, {})
            self._read_count += mark.seq not in marks
            marks[mark.seq] = mark

    def for_read(self, session_id: str, after_seq: int) -> JournalMark | None:
        """The remembered mark for a read after event ``after_seq`` (see
        :func:`~.journal_file.mark_for_read`)."""
        with self._lock:
            return mark_for_read(self._read.get(session_id, {}), after_seq)


def read_events(store: SqlStore, session_id: str, after_seq: int = 0) -> JournalRead:
    """See :meth:`~.base.Store.read_events`."""
    ids.validate_session_id(session_id)
    conn = store._connection()
    # Every row, as the files store reads every line: damage before a recovery
    # point is still damage, and a point made over it must not hide it.
    rows = conn.execute(
        f"SELECT seq, CAST(line AS BLOB) FROM events WHERE journal = {JOURNAL} ORDER BY seq",
        (session_id,),
    ).fetchall()
    if not rows:
        store._require(conn, session_id)
        # Known (a registry entry) but without a single row: the journal is gone.
        return missing_journal_read(session_id, store._loc("events", session_id))
    # A writer learns from a clean read of its journal what it needs to mark its points.
    writer = store._last_seq.get(session_id) == len(rows)
    clean = _read_clean(
        store, session_id, rows, after_seq, store._marks.for_read(session_id, after_seq), writer
    )
    if clean is not None:
        read, found = clean
        if found is not None:
            store._marks.seen(session_id, found, store._last_seq.get(session_id))
        return read
    result = JournalRead(events=[])
    expected = 1
    for seq, line in rows:
        location = store._loc("events", session_id, seq)
        if seq > expected:
            missing = str(expected) if seq == expected + 1 else f"{expected}-{seq - 1}"
            detail = f"events {missing} of {session_id} are missing from the journal"
            result.damage.append(
                damage_at(store._loc("events", session_id, missing), "gap", detail)
            )
        expected = seq + 1
        try:
            if seq <= after_seq:
                # Checked (checksum, number) but not decoded, as in the files store.
                if codec.event_seq(line, location) != seq:
                    detail = f"{location}: row {seq} holds another event"
                    result.damage.append(damage_at(location, "decode", detail))
                else:
                    result.end_seq = seq
                continue
            event = codec.decode_event(line, location, store.sealer, session_id)
        except CorruptRecord as exc:
            result.damage.append(damage_at(location, "checksum", str(exc)))
            continue
        if event.seq != seq:
            detail = f"{location}: row {seq} holds event {event.seq}"
            result.damage.append(damage_at(location, "decode", detail))
            continue
        result.events.append(event)
        result.end_seq = seq
    return result


def _read_clean(
    store: SqlStore,
    session_id: str,
    rows: list[tuple[int, bytes]],
    after_seq: int,
    mark: JournalMark | None,
    seal: bool,
) -> tuple[JournalRead, JournalMark | None] | None:
    """The events after ``after_seq`` of an undamaged journal (and, if ``seal``,
    the mark of all its rows); None for any doubt.

    As in the files store: one tight checksum loop proves every row intact
    and numbered 1, 2, 3, ... (the rows after ``mark`` only, when its rows
    still match it); the loop above reports whatever is not.
    """
    seqs = [seq for seq, _ in rows]
    if seqs != list(range(1, len(rows) + 1)):
        return None
    lines = [line for _, line in rows]
    # The rows a mark covers need no check of their own, whether or not they are
    # decoded (a point's message window lies before it); each decoded row is
    # still checked by decode_event.
    covered = _covered(lines, mark) if mark is not None else None
    first = 1 if covered is None else covered.seq + 1
    # Rows hold whole lines, newline included: a row whose last byte is not its
    # newline is damaged even where its checksum (which does not cover the
    # newline) holds, so the check goes line by line.
    rest = lines[first - 1 :]
    if not _whole_lines(rest):
        return None
    if codec.intact_seqs([line[:-1] for line in rest], first) != seqs[first - 1 :]:
        return None
    start = max(after_seq, 0)
    try:
        events = [
            codec.decode_event(
                line, store._loc("events", session_id, seq), store.sealer, session_id
            )
            for seq, line in rows[start:]
        ]
    except CorruptRecord:
        return None
    found = None
    if seal and rows:
        data = b"".join(rest)
        known = _EMPTY if covered is None else covered
        found = JournalMark(len(rows), known.size + len(data), zlib.crc32(data, known.crc))
    return JournalRead(events=events, end_seq=len(rows)), found


def _covered(lines: list[bytes], mark: JournalMark) -> JournalMark | None:
    """``mark`` if rows 1..its seq (numbered so already) are still exactly what it was made of.

    Each row must be one whole line: the same bytes cut at other row
    boundaries would be damage that the check line by line reports.
    """
    if not 0 < mark.seq <= len(lines):
        return None
    covered = lines[: mark.seq]
    if not _whole_lines(covered):
        return None
    data = b"".join(covered)
    # The mark's bytes are N lines of one newline each, and each of the N rows ends
    # with one: equal bytes are therefore those very lines, one per row.
    if len(data) != mark.size or not mark.holds(data):
        return None
    return mark


def _whole_lines(rows: list[bytes]) -> bool:
    """Whether every row ends with its line's newline (an empty row does not)."""
    try:
        return bytes(map(_last_byte, rows)) == b"\n" * len(rows)
    except IndexError:
        return False  # an empty row


def lost_journals(store: SqlStore) -> list[str]:
    """See :meth:`~.base.Store.lost_journals`.

    Registry rows only: listing the points' sessions reads the whole points
    table. A session whose row is lost too is found by ``verify``, which reads it.
    """
    rows = store._all(
        "SELECT id FROM sessions EXCEPT SELECT j.session_id FROM journals j"
        " WHERE EXISTS (SELECT 1 FROM events e WHERE e.journal = j.id)"
    )
    return sorted((str(r[0]) for r in rows), key=_session_order)


def _session_order(session_id: str) -> tuple[date, int]:
    try:
        key = ids.parse_session_id(session_id)
    except InvalidIdentifier:
        return date.min, 0
    return key.day, key.number
