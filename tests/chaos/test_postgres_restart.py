"""PostgreSQL restarted with ``pg_ctl restart -m immediate`` under load: nothing acknowledged
is lost, every failed write is a ContinuityError that says what happened, and the next
call reconnects by itself."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaos_support import FIGURES, run_cli, store_url

from agent_continuity.errors import ContinuityError, StoreUnavailable
from agent_continuity.model import EventKind
from agent_continuity.storage import open_store
from agent_continuity.storage.postgres import PostgresStore
from agent_continuity.testing.factory import draft_record, lease_request, message
from postgres_support import server

WRITERS = 4
BEFORE = 40  # acknowledged appends per writer before the restart
AFTER = 40  # and after it, so every writer is shown to reconnect


@dataclass
class Writer:
    """One thread appending to its own session; what the store acknowledged or refused."""

    url: str
    number: int
    session_id: str = ""
    acked: dict[int, str] = field(default_factory=dict)  # seq -> text
    refused: list[ContinuityError] = field(default_factory=list)
    crashed: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        store = open_store(self.url)
        try:
            record, lease = store.create_session(draft_record(), lease_request(f"w{self.number}"))
            self.session_id = record.id
            n = 0
            while not self.stop.is_set():
                n += 1
                text = f"w{self.number}.{n}"
                try:
                    (event,) = store.append(lease, [message(text)])
                except ContinuityError as exc:
                    self.refused.append(exc)
                    time.sleep(0.01)
                    continue
                self.acked[event.seq] = text
        except BaseException as exc:  # anything else is a bug the test reports
            self.crashed.append(exc)
        finally:
            store.close()


def _wait_for(check: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the writers stopped making progress"
        time.sleep(0.02)


def test_an_immediate_server_restart_under_load_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    url = store_url("postgres", tmp_path)
    writers = [Writer(url, n) for n in range(WRITERS)]
    threads = [threading.Thread(target=w.run, name=f"writer-{w.number}") for w in writers]
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: all(len(w.acked) >= BEFORE for w in writers), 120)
        before = [len(w.acked) for w in writers]
        server().restart_immediate()  # every backend killed mid-write; crash recovery on start
        _wait_for(
            lambda: all(len(w.acked) >= b + AFTER for w, b in zip(writers, before, strict=True)),
            120,
        )
    finally:
        for writer in writers:
            writer.stop.set()
        for thread in threads:
            thread.join(60)
    assert [w.crashed for w in writers] == [[]] * WRITERS
    refused = [exc for w in writers for exc in w.refused]
    # What a writer was told: the server went away, what it means for the write, what to do.
    for exc in refused:
        assert isinstance(exc, StoreUnavailable), repr(exc)
        text = str(exc)
        assert "PostgreSQL" in text and "Traceback" not in text, text
        assert ("not acknowledged" in text) or ("no connection" in text), text
    FIGURES["writes refused while PostgreSQL restarted"] += len(refused)

    store = open_store(url, create=False)
    try:
        for writer in writers:
            read = store.read_events(writer.session_id)
            assert read.damage == []
            assert [e.seq for e in read.events] == list(range(1, len(read.events) + 1))
            texts = {e.seq: e.payload["text"] for e in read.events if e.kind is EventKind.MESSAGE}
            # Every acknowledged event, where it was acknowledged; an append whose
            # answer the restart cut off may have landed too (it was never promised).
            assert {seq: texts.get(seq) for seq in writer.acked} == writer.acked
            FIGURES["acknowledged events checked after a server restart"] += len(writer.acked)
    finally:
        store.close()
    verified = run_cli(["--store", url, "verify", "--json"], tmp_path)
    assert verified.code == 0 and verified.json()["damage"] == [], verified


def test_a_write_while_the_server_is_down_fails_with_a_continuity_error(tmp_path: Path) -> None:
    """A store whose server went away says so when it cannot wait any longer, and
    works again, without being reopened, once the server is back."""
    url = store_url("postgres", tmp_path)
    store = PostgresStore(url, timeout=2.0)
    try:
        record, lease = store.create_session(draft_record(), lease_request())
        pg = server()
        pg.stop_immediate()
        try:
            store.append(lease, [message("while the server is down")])
        except StoreUnavailable as exc:
            assert "PostgreSQL" in str(exc) and "Traceback" not in str(exc), str(exc)
        else:
            raise AssertionError("an append with the server down was acknowledged")
        finally:
            pg.start()
        (event,) = store.append(lease, [message("after the restart")])
        texts = [e.payload.get("text") for e in store.read_events(record.id).events]
        assert texts[-1] == "after the restart" and event.seq == len(texts)
    finally:
        store.close()
