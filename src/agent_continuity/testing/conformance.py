"""The Store conformance suite: a store is done when it passes this unchanged.

A backend (ours or a third party's) runs the whole suite from a short file::

    import pytest

    pytest.register_assert_rewrite("agent_continuity.testing")
    from agent_continuity.testing.conformance import StoreConformance, StoreFactory

    class MyFactory(StoreFactory):
        def open(self):
            return MyStore(self.location / "store")      # same data on every call

        def truncate_journal(self, store, session_id, nbytes):
            ...  # cut the last `nbytes` bytes off the session's stored journal

        def flip_journal_byte(self, store, session_id, seq):
            ...  # change one byte inside the stored record of event `seq`

        def flip_point_byte(self, store, point_id):
            ...  # change one byte inside the stored recovery point

        def delete_journal(self, store, session_id):
            ...  # delete the session's whole journal (file, rows...)

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path):
            factory = MyFactory(tmp_path)
            yield factory
            factory.close_all()

``store_factory()`` opens the store under test; every call within one test
opens *the same data* again (a second handle, as another process would), and
each test gets fresh data. The damage hooks let the suite prove that damage
is reported, never skipped. Differences in capability are read from the
store's attributes, never hidden by skipping: a store with
``shared_across_processes = False`` has its id allocation raced by threads
instead of processes. Factories must be picklable (the process test sends
them to child processes started with ``spawn``).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from agent_continuity import ids
from agent_continuity.errors import (
    CorruptRecord,
    DuplicateRecord,
    InvalidIdentifier,
    InvalidInput,
    LeaseHeld,
    RecoveryPointNotFound,
    SessionNotFound,
)
from agent_continuity.model import (
    CodeContext,
    ContextSnapshot,
    ConversationContext,
    EmergencyBackup,
    EventDraft,
    EventKind,
    FileStamp,
    Lease,
    SessionRecord,
    SessionStatus,
    Trigger,
)
from agent_continuity.storage.base import Store
from agent_continuity.testing.damage_suite import DamageConformance
from agent_continuity.testing.factory import (
    ALICE,
    BOB,
    CREATES_PER_PROCESS,
    PROCESSES,
    T0,
    StoreFactory,
    create_sessions,
    draft_record,
    lease_request,
    make_point,
    message,
)

__all__ = [
    "ALICE",
    "BOB",
    "T0",
    "StoreConformance",
    "StoreFactory",
    "draft_record",
    "lease_request",
    "make_point",
    "message",
]

# -- the suite --------------------------------------------------------------


class StoreConformance(DamageConformance):
    """Every behaviour of the :class:`~agent_continuity.storage.base.Store` contract.

    Subclass it as ``Test…`` and provide a ``store_factory`` fixture returning
    a :class:`StoreFactory`.
    """

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> Store:
        """The store under test, on fresh data."""
        return store_factory()

    @pytest.fixture
    def session(self, store: Store) -> tuple[SessionRecord, Lease]:
        """One session created by alice, with two messages after its session event."""
        record, lease = store.create_session(draft_record(), lease_request())
        store.append(lease, [message("hello"), message("how far did we get?", 2)])
        return record, lease

    # -- sessions ------------------------------------------------------

    def test_ids_count_up_per_utc_day(self, store: Store) -> None:
        made = [store.create_session(draft_record(), lease_request())[0].id for _ in range(3)]
        next_day = store.create_session(draft_record(T0 + timedelta(days=1)), lease_request())[0]
        assert made == ["SESSION-241124-001", "SESSION-241124-002", "SESSION-241124-003"]
        assert next_day.id == "SESSION-241125-001"

    def test_create_returns_the_record_and_the_first_lease(self, store: Store) -> None:
        record, lease = store.create_session(draft_record(), lease_request())
        assert record.last_seq == 1 and record.status is SessionStatus.ACTIVE
        assert (lease.session_id, lease.token, lease.holder) == (record.id, 1, ALICE)
        first = store.read_events(record.id).events
        assert [(e.seq, e.kind) for e in first] == [(1, EventKind.SESSION)]
        assert first[0].payload["record"]["id"] == record.id
        assert store.read_lease(record.id) == lease

    def test_registry_entry_keeps_the_specification_shape(self, store: Store) -> None:
        record, _ = store.create_session(draft_record(), lease_request())
        wire = store.get_session(record.id).to_wire()
        assert wire == record.to_wire()
        assert wire["lastActivity"] == "2024-11-24T10:00:00Z"
        assert wire["agent"]["capabilities"] == ["coding", "debugging"]
        assert wire["context"]["currentTask"] == "TASK-6-004"
        assert wire["context"]["keyDecisions"] == ["Using Twilio as primary SMS provider"]
        assert wire["state"]["completedSteps"] == ["database-schema-created"]
        assert wire["state"]["progress"] == "85%"
        assert wire["persistence"]["backupCount"] == 5

    def test_list_sessions_oldest_first(self, store: Store) -> None:
        later = store.create_session(draft_record(T0 + timedelta(hours=1)), lease_request())[0]
        earlier = store.create_session(draft_record(T0), lease_request())[0]
        assert [r.id for r in store.list_sessions()] == [earlier.id, later.id]

    def test_unknown_session_is_not_found(self, store: Store) -> None:
        with pytest.raises(SessionNotFound):
            store.get_session("SESSION-241124-042")
        with pytest.raises(SessionNotFound):
            store.read_events("SESSION-241124-042")

    def test_put_session_replaces_the_entry_for_every_handle(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        record, _ = store.create_session(draft_record(), lease_request())
        other = store.create_session(draft_record(), lease_request())[0]
        changed = record.model_copy(
            update={
                "status": SessionStatus.COMPLETED,
                "context": record.context.model_copy(update={"current_phase": "phase-7"}),
            }
        )
        store_factory().put_session(changed)
        assert store.get_session(record.id) == changed
        assert store.get_session(other.id) == other
        assert [r.status for r in store_factory().list_sessions()] == [
            SessionStatus.COMPLETED,
            SessionStatus.ACTIVE,
        ]

    def test_registry_updates_from_two_handles_never_lose_each_other(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        other = store_factory()  # another process, with its own view of the registry
        first = store.create_session(draft_record(), lease_request())[0]
        second = other.create_session(draft_record(), lease_request())[0]
        store.list_sessions(), other.list_sessions()  # both views are warm
        other.put_session(second.model_copy(update={"type": "b"}))
        store.put_session(first.model_copy(update={"type": "a"}))  # its view predates "b"
        for handle in (store, other, store_factory()):
            types = {r.id: r.type for r in handle.list_sessions()}
            assert types == {first.id: "a", second.id: "b"}

    def test_put_session_of_an_unknown_session_is_refused(self, store: Store) -> None:
        stray = draft_record().model_copy(update={"id": "SESSION-241124-009"})
        with pytest.raises(SessionNotFound):
            store.put_session(stray)
        assert store.list_sessions() == []

    def test_everything_survives_close_and_reopen(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        store.save_point(make_point(store, record.id, 1))
        store.close()
        again = store_factory()
        assert again.get_session(record.id) == record
        assert again.read_lease(record.id) == lease
        assert [e.seq for e in again.read_events(record.id).events] == [1, 2, 3]
        assert [p.id for p in again.list_points(record.id)] == ["RECOVERY-241124-001-AUTO-SAVE-1"]

    # -- journal ---------------------------------------------------------

    def test_append_numbers_events_without_gaps(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        appended = store.append(lease, [message(f"m{n}", n) for n in range(3, 8)])
        assert [e.seq for e in appended] == [4, 5, 6, 7, 8]
        read = store.read_events(record.id)
        assert read.damage == [] and read.last_seq == 8
        assert [e.seq for e in read.events] == list(range(1, 9))
        assert [e.payload.get("text") for e in read.events[3:]] == ["m3", "m4", "m5", "m6", "m7"]
        assert [e.seq for e in store.read_events(record.id, after_seq=6).events] == [7, 8]

    def test_events_come_back_as_appended(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        drafts = [
            EventDraft(
                kind=EventKind.DECISION,
                at=T0 + timedelta(minutes=3),
                payload={"text": "Using Twilio"},
            ),
            EventDraft(
                kind=EventKind.TOOL_CALL,
                at=T0 + timedelta(minutes=4, milliseconds=250),
                payload={"callId": "c1", "name": "grep", "arguments": {"n": [1, 2.5, None]}},
            ),
        ]
        appended = store.append(lease, drafts)
        read = store.read_events(record.id, after_seq=3).events
        assert [(e.seq, e.kind, e.at, e.payload) for e in read] == [
            (e.seq, e.kind, e.at, e.payload) for e in appended
        ]

    def test_unusual_text_round_trips_exactly(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        texts = [
            "line\u2028separator\u2029paragraph",
            "nul\x00byte and \x1b escape",
            "emoji 🧪 and 汉字 and עברית",
            'quotes " \\ and a newline\nin the middle',
            "x" * 1_000_000,
        ]
        store.append(lease, [message(t) for t in texts])
        for reader in (store, store_factory()):
            read = reader.read_events(record.id, after_seq=3)
            assert read.damage == []
            got = [e.payload["text"] for e in read.events]
            assert [t.encode() for t in got] == [t.encode() for t in texts]

    def test_a_group_that_cannot_be_stored_writes_nothing(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        bad = EventDraft(kind=EventKind.NOTE, at=T0, payload={"text": "lone \ud800 surrogate"})
        with pytest.raises(InvalidInput):
            store.append(lease, [message("fine"), bad])
        assert store.read_events(record.id).last_seq == 3
        assert [e.seq for e in store.append(lease, [message("next")])] == [4]

    # -- leases -----------------------------------------------------------

    def test_a_live_lease_refuses_another_holder(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        with pytest.raises(LeaseHeld) as refused:
            store.acquire_lease(record.id, lease_request(BOB, T0 + timedelta(minutes=1)))
        assert refused.value.holder == ALICE
        assert ALICE in str(refused.value)

    def test_the_same_holder_or_an_expired_lease_is_granted(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        again = store.acquire_lease(record.id, lease_request(ALICE, T0 + timedelta(minutes=1)))
        assert (again.token, again.holder) == (2, ALICE)
        taken = store.acquire_lease(record.id, lease_request(BOB, T0 + timedelta(minutes=7)))
        assert (taken.token, taken.holder) == (3, BOB)
        assert store.read_lease(record.id) == taken

    def test_acquiring_appends_a_lease_event(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        taken = store.acquire_lease(record.id, lease_request(BOB), steal=True)
        last = store.read_events(record.id).events[-1]
        assert (last.seq, last.kind) == (4, EventKind.LEASE)
        assert (last.payload["token"], last.payload["holder"]) == (taken.token, BOB)

    def test_a_takeover_fences_out_the_old_writer(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, old = session
        store.append(old, [message("before the takeover")])  # the old writer's cache is warm
        other = store_factory()  # another process
        new = other.acquire_lease(record.id, lease_request(BOB), steal=True, expect_token=1)
        assert new.token == 2
        before = store.read_events(record.id).events
        with pytest.raises(LeaseHeld) as refused:
            store.append(old, [message("from the old writer")])
        assert refused.value.holder == BOB
        assert store.read_events(record.id).events == before
        assert [e.seq for e in other.append(new, [message("from the new writer")])] == [6]
        with pytest.raises(LeaseHeld):
            store.renew_lease(old, lease_request(ALICE, T0 + timedelta(minutes=1)))

    def test_only_one_of_two_racing_takeovers_wins(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        store.acquire_lease(record.id, lease_request(BOB), steal=True, expect_token=1)
        with pytest.raises(LeaseHeld):
            store_factory().acquire_lease(
                record.id, lease_request("carol@host-c"), steal=True, expect_token=1
            )
        current = store.read_lease(record.id)
        assert current is not None and (current.token, current.holder) == (2, BOB)

    def test_renew_extends_without_a_new_token(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        later = T0 + timedelta(minutes=4)
        renewed = store.renew_lease(lease, lease_request(ALICE, later))
        assert (renewed.token, renewed.expires) == (1, later + timedelta(minutes=5))
        assert store.read_lease(record.id) == renewed
        with pytest.raises(LeaseHeld):  # still live at T0 + 8 min thanks to the renewal
            store.acquire_lease(record.id, lease_request(BOB, T0 + timedelta(minutes=8)))
        assert [e.seq for e in store.append(renewed, [message("still mine")])] == [4]

    def test_release_lets_the_next_holder_in_with_a_higher_token(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        store.release_lease(lease)
        taken = store.acquire_lease(record.id, lease_request(BOB, T0 + timedelta(minutes=1)))
        assert taken.token == 2
        store.release_lease(lease)  # stale: a no-op
        assert store.read_lease(record.id) == taken

    # -- recovery points ----------------------------------------------------

    def test_points_save_load_and_list(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        first = make_point(store, record.id, 1)
        info = store.save_point(first)
        assert (info.id, info.session_id, info.seq, info.trigger) == (
            first.id,
            record.id,
            3,
            Trigger.AUTO,
        )
        store.append(lease, [message("more")])
        second = make_point(store, record.id, 2, Trigger.TASK_COMPLETION)
        store.save_point(second)
        assert store.load_point(first.id).to_wire() == first.to_wire()
        assert store.load_point(second.id).to_wire() == second.to_wire()
        listed = store.list_points(record.id)
        assert [(p.id, p.seq, p.trigger, p.created) for p in listed] == [
            (first.id, 3, Trigger.AUTO, first.created),
            (second.id, 4, Trigger.TASK_COMPLETION, second.created),
        ]
        assert store.list_points("SESSION-241124-099") == []

    def test_a_large_code_context_round_trips_and_is_pruned_with_its_points(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        saved = []
        for number in range(1, 9):
            store.append(lease, [message(f"m{number}")])
            point = make_point(store, record.id, number, Trigger.USER_REQUEST)
            files = {
                f"data/f{n:04d}.txt": FileStamp(size=n, digest=f"{n:040x}") for n in range(500)
            }
            files[f"data/f{number:04d}.txt"] = FileStamp(size=-1)  # one file deleted per point
            point.code_context = CodeContext(vcs="git", files=files, observed_at=T0)
            store.save_point(point)
            saved.append(point)
        for point in saved:
            assert store.load_point(point.id).to_wire() == point.to_wire()
        store.prune_points(record.id, keep_automatic=5)
        assert len(store.list_points(record.id)) == 8  # under what retention keeps of a kind
        assert store.load_point(saved[-1].id).code_context == saved[-1].code_context

    def test_a_point_is_never_overwritten(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        original = make_point(store, record.id, 1)
        store.save_point(original)
        store.append(lease, [message("more")])
        with pytest.raises(DuplicateRecord):
            store.save_point(make_point(store, record.id, 1))
        assert store.load_point(original.id).seq == 3
        assert len(store.list_points(record.id)) == 1

    def test_an_unknown_point_is_not_found(self, store: Store) -> None:
        with pytest.raises(RecoveryPointNotFound):
            store.load_point("RECOVERY-241124-001-AUTO-SAVE-1")

    def test_pruning_keeps_the_newest_automatic_and_every_trigger_point(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        for number in range(1, 8):
            store.append(lease, [message(f"m{number}")])
            trigger = Trigger.MAJOR_DECISION if number in (2, 4) else Trigger.AUTO
            store.save_point(make_point(store, record.id, number, trigger))
        deleted = store.prune_points(record.id, keep_automatic=3)
        assert deleted == [
            ids.make_recovery_id(record.id, auto_save=1),
            ids.make_recovery_id(record.id, auto_save=3),
        ]
        left = store.list_points(record.id)
        assert [p.trigger for p in left].count(Trigger.MAJOR_DECISION) == 2
        assert [p.seq for p in left if p.automatic] == [8, 9, 10]
        with pytest.raises(RecoveryPointNotFound):
            store.load_point(deleted[0])

    def test_pruning_never_deletes_the_newest_valid_point(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        points = []
        for number in (1, 2, 3):
            store.append(lease, [message(f"m{number}")])
            points.append(make_point(store, record.id, number))
            store.save_point(points[-1])
        for newer in points[1:]:
            store_factory.flip_point_byte(store, newer.id)
        deleted = store.prune_points(record.id, keep_automatic=1)
        assert deleted == [points[1].id]
        assert [p.id for p in store.list_points(record.id)] == [points[0].id, points[2].id]
        assert store.load_point(points[0].id).seq == 4

    def test_a_damaged_point_is_reported_not_loaded(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        point = make_point(store, record.id, 1)
        store.save_point(point)
        store_factory.flip_point_byte(store, point.id)
        with pytest.raises(CorruptRecord) as refused:
            store.load_point(point.id)
        assert refused.value.location
        report = store.verify()
        assert not report.ok
        assert any(point.id in d.location or point.id in d.detail for d in report.damage)

    # -- snapshots, emergency backups, recovery log ------------------------

    def test_context_snapshot_round_trip(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        assert store.load_context_snapshot(record.id) is None
        first = ContextSnapshot(
            session_id=record.id,
            timestamp=T0,
            seq=3,
            conversation_context=ConversationContext(topic="SMS \u2028 ✓"),
        )
        store.save_context_snapshot(first)
        second = first.model_copy(update={"seq": 4, "timestamp": T0 + timedelta(minutes=1)})
        store.save_context_snapshot(second)
        assert store.load_context_snapshot(record.id) == second

    def test_emergency_backup_round_trip(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        assert store.load_emergency(record.id) is None
        backup = EmergencyBackup(
            session_id=record.id,
            updated=T0,
            status=SessionStatus.ACTIVE,
            current_task="TASK-6-004",
            next_steps=["test-sms-endpoints"],
            progress=85,
            last_decision="Twilio",
        )
        store.save_emergency(backup)
        assert store.load_emergency(record.id) == backup
        assert store.list_emergency() == ([backup], [])

    def test_recovery_log_keeps_every_entry_in_order(self, store: Store) -> None:
        entries: list[dict[str, Any]] = [
            {"sessionId": "SESSION-241124-001", "decision": "auto-resume", "score": 0.91},
            {"sessionId": "SESSION-241124-002", "decision": "prompt", "warnings": ["ünïcode"]},
        ]
        for entry in entries:
            store.log_recovery(entry)
        assert store.read_recovery_log() == entries

    # -- identifiers ---------------------------------------------------------

    @pytest.mark.parametrize(
        "bad",
        [
            "../../etc/passwd",
            "",
            "SESSION-2411-1",
            "SESSION-241124-001/../../x",
            "SESSION-241124-001\x00",
            "session-241124-001",
        ],
    )
    def test_malformed_ids_are_refused_before_any_lookup(self, store: Store, bad: str) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.get_session(bad),
            lambda: store.read_events(bad),
            lambda: store.read_lease(bad),
            lambda: store.acquire_lease(bad, lease_request()),
            lambda: store.list_points(bad),
            lambda: store.load_point(bad),
            lambda: store.load_context_snapshot(bad),
            lambda: store.load_emergency(bad),
            lambda: store.put_session(draft_record().model_copy(update={"id": bad})),
        ]
        for call in calls:
            with pytest.raises(InvalidIdentifier):
                call()

    # -- concurrency -----------------------------------------------------------

    def test_ids_are_unique_under_concurrent_creators(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        start: Any
        results: Any
        if store.shared_across_processes:
            context = multiprocessing.get_context("spawn")
            start, results = context.Barrier(PROCESSES + 1), context.Queue()
            workers: list[Any] = [
                context.Process(
                    target=create_sessions,
                    args=(store_factory, CREATES_PER_PROCESS, start, results, f"p{n}"),
                )
                for n in range(PROCESSES)
            ]
        else:
            start, results = threading.Barrier(PROCESSES + 1), queue.Queue()
            workers = [
                threading.Thread(
                    target=create_sessions,
                    args=(store_factory, CREATES_PER_PROCESS, start, results, f"t{n}"),
                )
                for n in range(PROCESSES)
            ]
        for worker in workers:
            worker.start()
        start.wait(120)
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(60)
        assert not [o for o in outcomes if isinstance(o, str)]
        made = [session_id for outcome in outcomes for session_id in outcome]
        total = PROCESSES * CREATES_PER_PROCESS
        expected = {ids.make_session_id(T0.date(), n) for n in range(1, total + 1)}
        assert len(made) == total and set(made) == expected
        assert {r.id for r in store.list_sessions()} == expected
