"""A session's journal file: reading it with damage reports, appending to it cheaply.

The journal is ``snapshots/conversation-history/SESSION-….jsonl``, one
:func:`~.codec.encode_event` line per event, never rewritten in place. A
reader gets every line that passes its checksum and a :class:`~.model.Damage`
for everything else: a torn last line, a line failing its checksum, a gap in
the sequence numbers.

A recovery point saved by the process writing the journal carries a
:class:`JournalMark`: the CRC-32 of the journal's bytes up to the point, which
that process knew to be intact events 1..N. A reader that finds the same
CRC over the same bytes takes those lines as still intact without checking
them one by one (one ``crc32`` call instead of ten thousand, with the same
1 in 2**32 chance of missing damage as each line's own CRC-32); any other
bytes fail the comparison and are checked line by line, as without a mark.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from agent_continuity.errors import CorruptRecord, SessionNotFound
from agent_continuity.model import Damage

from . import codec
from .atomic import append_durably, store_error
from .base import JournalRead
from .envelope import Sealer

_TAIL_WINDOW = 64 * 1024


@dataclass(slots=True)
class JournalLine:
    """One newline-separated piece of a journal file and where it starts."""

    offset: int
    data: bytes  # without the newline
    terminated: bool


def split_lines(data: bytes) -> list[JournalLine]:
    """Cut a journal's bytes into lines; empty lines (left by a torn write) are dropped."""
    lines: list[JournalLine] = []
    pieces = data.split(b"\n")  # one C call instead of a find() per line
    last = len(pieces) - 1
    offset = 0
    for index, piece in enumerate(pieces):
        if piece:
            lines.append(JournalLine(offset, piece, index < last))
        offset += len(piece) + 1
    return lines


def parse_lines(
    lines: list[JournalLine],
    location: str,
    after_seq: int = 0,
    sealer: Sealer | None = None,
    session_id: str = "",
) -> tuple[JournalRead, list[JournalLine]]:
    """Decode journal lines, reporting damage instead of skipping it.

    Returns:
        The events with ``seq > after_seq`` plus every damage found (in the
        whole journal), and the damaged lines themselves (for quarantine).
    """
    result = JournalRead(events=[])
    damaged: list[JournalLine] = []
    previous = 0
    for line in lines:
        try:
            # Lines up to ``after_seq`` are checked (checksum, order) but not decoded:
            # recovery from a point reads only the tail, whatever the journal's length.
            seq = codec.event_seq(line.data, location)
            event = (
                codec.decode_event(line.data, location, sealer, session_id)
                if seq > after_seq
                else None
            )
        except CorruptRecord as exc:
            damaged.append(line)
            torn = not line.terminated
            result.damage.append(
                Damage(
                    location=location,
                    kind="torn-tail" if torn else "checksum",
                    detail=(
                        f"the last line ({len(line.data)} bytes) is incomplete: a write was "
                        "cut short by a crash or power loss"
                        if torn
                        else f"line at byte {line.offset}: "
                        + exc.message.removeprefix(f"{location}: ")
                    ),
                    offset=line.offset,
                )
            )
            continue
        if seq != previous + 1:
            result.damage.append(
                Damage(
                    location=location,
                    kind="gap",
                    detail=f"event {seq} follows event {previous}; "
                    + (
                        f"events {previous + 1}..{seq - 1} are missing"
                        if seq > previous + 1
                        else "the sequence goes backwards"
                    ),
                    offset=line.offset,
                )
            )
        previous = max(previous, seq)
        if event is not None:
            result.events.append(event)
    result.end_seq = previous
    return result, damaged


#: How many events before a mark a read may start and still use it. Enough for
#: any point's message window (``replay.WINDOW_EVENTS``); a read from much
#: further back decodes so much that checking each line costs little more.
MARK_REACH = 1024


@dataclass(frozen=True, slots=True)
class JournalMark:
    """The first ``size`` bytes of a journal were intact events 1..``seq`` with this CRC-32."""

    seq: int
    size: int
    crc: int

    #: The key under which a recovery point's document carries its mark.
    KEY = "journalMark"

    def to_doc(self) -> dict[str, int]:
        """The mark as a point document carries it (inside the point's checksum)."""
        return {"seq": self.seq, "bytes": self.size, "crc32": self.crc}

    @classmethod
    def take_from(cls, doc: dict[str, object], seq: int) -> JournalMark | None:
        """Remove the mark from a point's document; return it if it is one for event ``seq``.

        A missing or malformed mark is no mark: the journal is then checked line by line.
        """
        value = doc.pop(cls.KEY, None)
        if not isinstance(value, dict) or value.get("seq") != seq:
            return None
        size, crc = value.get("bytes"), value.get("crc32")
        if type(size) is not int or type(crc) is not int:  # exactly int: not bool
            return None
        return cls(seq, size, crc)

    def holds(self, data: bytes) -> bool:
        """Whether ``data`` begins with exactly the bytes this mark was made of."""
        if not (0 < self.size <= len(data) and data[self.size - 1] == 0x0A):
            return False  # shorter, or not cut at a line's end
        if zlib.crc32(memoryview(data)[: self.size]) != self.crc:
            return False
        # The bytes are what the mark's writer saw; their last line must be event `seq`.
        last = data[data.rfind(b"\n", 0, self.size - 1) + 1 : self.size]
        try:
            return codec.event_seq(last) == self.seq
        except CorruptRecord:
            return False


def mark_for_read(marks: dict[int, JournalMark], after_seq: int) -> JournalMark | None:
    """Of the marks of one journal (by seq), the one for a read after event ``after_seq``.

    The mark at ``after_seq``; else the newest before it; else the nearest after
    it (a point read from before itself, for the recent messages it refers to).
    A mark that no longer matches the bytes only costs the shortcut.
    """
    if not marks:
        return None
    found = marks.get(after_seq)
    if found is None:
        below = [seq for seq in marks if seq <= after_seq]
        found = marks[max(below)] if below else marks[min(marks)]
    return found


@dataclass(frozen=True, slots=True)
class JournalSeal:
    """What a clean read saw: the file (inode), its length, last event and CRC-32."""

    inode: int
    size: int
    seq: int
    crc: int


def read_journal(
    path: Path,
    after_seq: int = 0,
    mark: JournalMark | None = None,
    *,
    seal: bool = False,
    sealer: Sealer | None = None,
) -> tuple[JournalRead, list[JournalLine], JournalSeal | None]:
    """Read and check a whole journal file (see :func:`parse_lines`).

    Args:
        path: The journal.
        after_seq: Return only the events after this number (all are checked).
        mark: A mark of the journal's beginning; when the bytes still match it,
            the lines it covers are known intact without checking each.
        seal: Also return a :class:`JournalSeal` when the journal is undamaged.
        sealer: The store's sealer when it is encrypted (payloads are opened,
            records failing authentication reported as damage).

    Returns:
        The read, the damaged lines (for quarantine), and the seal if asked for
        and the journal is undamaged.

    Raises:
        SessionNotFound: If the file does not exist.
        StoreError: If it cannot be read.
    """
    try:
        with open(path, "rb") as file:
            inode = os.fstat(file.fileno()).st_ino
            data = file.read()
    except FileNotFoundError:
        raise SessionNotFound(
            f"no journal {path}; `continuity list` shows the sessions of this store"
        ) from None
    except OSError as exc:
        raise store_error(exc, "read", path) from exc
    session_id = path.name.removesuffix(".jsonl")
    clean = _read_clean(data, str(path), after_seq, mark, seal, sealer, session_id)
    if clean is not None:
        read, crc = clean
        found = None if crc is None else JournalSeal(inode, len(data), read.end_seq, crc)
        return read, [], found
    read, damaged = parse_lines(split_lines(data), str(path), after_seq, sealer, session_id)
    return read, damaged, None


def _read_clean(
    data: bytes,
    location: str,
    after_seq: int,
    mark: JournalMark | None,
    seal: bool,
    sealer: Sealer | None = None,
    session_id: str = "",
) -> tuple[JournalRead, int | None] | None:
    """The events after ``after_seq`` of an undamaged journal (and its CRC-32
    if ``seal``); None for any doubt.

    Almost every journal is whole: every line intact, sequence numbers 1, 2,
    3, ... This path proves that with one tight loop (over the lines after
    ``mark`` when it holds) and decodes only the events wanted; anything else
    (a torn tail, a bad checksum, a gap, a stray empty line) goes to
    :func:`parse_lines`, which says what is wrong.
    """
    if not data.endswith(b"\n"):
        return None if data else (JournalRead(events=[]), 0 if seal else None)
    start, first, crc = 0, 1, 0
    covered: list[bytes] = []  # wanted lines that the mark vouches for
    reach = 0 if mark is None else mark.seq - after_seq
    if mark is not None and reach <= MARK_REACH and mark.holds(data):
        start, first, crc = mark.size, mark.seq + 1, mark.crc
        if reach > 0:
            # A point referring to the journal for its recent messages is read from
            # before itself: the mark's bytes are events 1..seq, one per line, so
            # the wanted ones are its last `reach` lines.
            begin = start
            for _ in range(reach):
                begin = data.rfind(b"\n", 0, begin - 1) + 1
            covered = data[begin:start].split(b"\n")[:-1]
    lines = (data[start:] if start else data).split(b"\n")
    lines.pop()  # after the last newline
    seqs = codec.intact_seqs(lines, first)
    if seqs is None or seqs != list(range(first, first + len(seqs))):
        return None
    try:
        events = [
            codec.decode_event(line, location, sealer, session_id)
            for line in (*covered, *lines[max(after_seq + 1 - first, 0) :])
        ]
    except CorruptRecord:
        return None  # a sealed record that does not open: the careful path says which
    read = JournalRead(events=events, end_seq=first - 1 + len(seqs))
    return read, (zlib.crc32(memoryview(data)[start:], crc) if seal else None)


def high_water_seq(fd: int, size: int) -> int:
    """The highest sequence number the journal may have handed out.

    That is the last valid event's ``seq`` plus one for each damaged line
    after it: a damaged tail line was an event once, and its number must not
    be given to another (a recovery point may already cover it). Reads only
    the tail of the file unless the tail holds no valid line.
    """
    window = _TAIL_WINDOW
    while True:
        start = max(0, size - window)
        lines = split_lines(os.pread(fd, size - start, start))
        if start > 0 and lines:
            lines = lines[1:]  # may begin mid-line
        damaged_after = 0
        for line in reversed(lines):
            try:
                return codec.event_seq(line.data) + damaged_after
            except CorruptRecord:
                damaged_after += 1
        if start == 0:
            return damaged_after
        window *= 4


@dataclass(slots=True)
class JournalHandle:
    """An open journal plus what this process last saw of it.

    Only use it while holding the session's lock. ``refresh`` costs one
    ``stat``: when inode and size are what this process left them, nobody
    else appended (so neither the lease nor the last ``seq`` changed) and
    nothing else is re-read.
    """

    path: Path
    fd: int = -1
    inode: int = -1
    size: int = 0
    last_seq: int = 0
    ends_clean: bool = True  # ends with a newline (or is empty)
    dirty: bool = False  # written but not yet fdatasync'ed (batched mode)
    # CRC-32 of the first `size` bytes when they are known to be intact events
    # 1..last_seq (read clean, then appended by this handle); None if unknown.
    verified: int | None = None

    def refresh(self) -> bool:
        """Reopen or re-scan the journal if it changed behind our back.

        Returns:
            True when it had changed (the caller must re-read the lease).

        Raises:
            SessionNotFound: If the journal is gone.
            StoreError: If it cannot be opened or read.
        """
        try:
            st = os.stat(str(self.path))
            if st.st_ino == self.inode and st.st_size == self.size:
                return False
            self.verified = None
            if st.st_ino != self.inode:
                # Replaced by `verify --repair`: write to the new file, never the old one.
                self.close()
                self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
                st = os.fstat(self.fd)
                self.inode = st.st_ino
            self.size = st.st_size
            self.last_seq = high_water_seq(self.fd, self.size)
            self.ends_clean = self.size == 0 or os.pread(self.fd, 1, self.size - 1) == b"\n"
        except FileNotFoundError:
            self.close()
            raise SessionNotFound(f"the journal {self.path} is missing") from None
        except OSError as exc:
            self.close()
            raise store_error(exc, "open", self.path) from exc
        return True

    def append(self, data: bytes, *, sync: bool) -> None:
        """Append complete lines; durable on return when ``sync``.

        Raises:
            StoreError: If the write failed; the journal is then as before.
        """
        try:
            self.size = append_durably(
                self.fd, self.path, self.size, data, sync=sync, ends_clean=self.ends_clean
            )
        except BaseException:
            self.size, self.verified = -1, None  # unknown until the next refresh
            raise
        if self.verified is not None:
            self.verified = zlib.crc32(data, self.verified) if self.ends_clean else None
        self.ends_clean = True
        self.dirty = self.dirty or not sync

    def cut_back(self, size: int) -> None:
        """Undo appends made under this lock (a later step of the same change failed).

        Raises:
            StoreError: If the file could not be truncated.
        """
        try:
            os.ftruncate(self.fd, size)
            os.fdatasync(self.fd)
        except OSError as exc:
            self.size = -1
            raise store_error(exc, "undo an append to", self.path) from exc
        self.size, self.verified = size, None

    def flush(self) -> None:
        """Make appended lines durable (batched mode).

        Raises:
            StoreError: If the disk refused.
        """
        if self.dirty and self.fd >= 0:
            try:
                os.fdatasync(self.fd)
            except OSError as exc:
                raise store_error(exc, "flush", self.path) from exc
            self.dirty = False

    def seed(self, seal: JournalSeal) -> None:
        """Take the CRC of a clean read of this very file, as long as nothing changed since."""
        if (seal.inode, seal.size, seal.seq) == (self.inode, self.size, self.last_seq):
            self.verified = seal.crc

    def mark(self, seq: int) -> JournalMark | None:
        """A mark of the journal as it stands, if it ends at event ``seq`` and is known intact."""
        if self.verified is None or self.last_seq != seq or self.size <= 0:
            return None
        try:
            if os.fstat(self.fd).st_size != self.size:  # appended elsewhere since
                return None
        except OSError:
            return None
        return JournalMark(seq, self.size, self.verified)

    def close(self) -> None:
        """Close the descriptor; the next refresh reopens it."""
        if self.fd >= 0:
            os.close(self.fd)
        self.fd, self.inode, self.size, self.verified = -1, -1, 0, None
