"""The damage half of the Store conformance suite: damage is reported, never skipped."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent_continuity.errors import JournalMissing
from agent_continuity.model import (
    EventKind,
    Lease,
    SessionRecord,
)
from agent_continuity.storage.base import Store
from agent_continuity.testing.factory import (
    BOB,
    T0,
    StoreFactory,
    draft_record,
    lease_request,
    make_point,
    message,
)


class DamageConformance:
    """Damage to a store's records: verify names it, reads work around it, repair closes it."""

    # -- damage ----------------------------------------------------------------

    def test_a_clean_store_verifies(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        store.save_point(make_point(store, record.id, 1))
        report = store.verify()
        assert report.ok and report.checked >= 4

    def test_a_torn_tail_is_reported_and_earlier_events_are_kept(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        store.append(lease, [message("the last words")])
        store_factory.truncate_journal(store, record.id, 7)
        read = store.read_events(record.id)
        assert [e.seq for e in read.events] == [1, 2, 3]
        assert read.damage and all(d.location for d in read.damage)
        assert not store.verify().ok

    def test_a_flipped_byte_is_reported_and_the_rest_is_kept(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        store.append(lease, [message("four"), message("five")])
        store_factory.flip_journal_byte(store, record.id, 3)
        read = store.read_events(record.id)
        assert [e.seq for e in read.events] == [1, 2, 4, 5]
        assert read.damage and all(d.location for d in read.damage)
        assert not store.verify().ok

    def test_repair_closes_a_lost_event_with_a_tombstone_naming_the_quarantine(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        store.append(lease, [message("four"), message("five")])
        before = store.read_events(record.id).events
        store_factory.flip_journal_byte(store, record.id, 3)

        report = store.verify(repair=True)

        assert report.damage and report.quarantined
        assert store.verify().ok, store.verify().damage
        read = store.read_events(record.id)
        assert not read.damage
        assert [e.seq for e in read.events] == [1, 2, 3, 4, 5]
        assert [e for e in read.events if e.seq != 3] == [e for e in before if e.seq != 3]
        stone = read.events[2]
        assert stone.kind is EventKind.NOTE
        assert stone.payload["lost"]["reason"] == "checksum"
        assert stone.payload["lost"]["quarantine"] in report.quarantined
        assert stone.at == before[1].at  # no later than what it stands between
        assert [e.seq for e in store.append(lease, [message("six")])] == [6]
        assert store_factory().read_events(record.id).events[2] == stone

    def test_a_lost_journal_is_damage_to_that_session_only(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        other, other_lease = store.create_session(draft_record(), lease_request(BOB))
        point = make_point(store, record.id, 1)
        store.save_point(point)
        store_factory.delete_journal(store, record.id)
        again = store_factory()  # as the next process sees it

        read = again.read_events(record.id)
        assert read.events == [] and [d.kind for d in read.damage] == ["missing"]
        assert again.lost_journals() == [record.id]
        assert [r.id for r in again.list_sessions()] == [record.id, other.id]
        with pytest.raises(JournalMissing):
            again.append(lease, [message("never stored")])
        with pytest.raises(JournalMissing):
            again.acquire_lease(record.id, lease_request(BOB, T0 + timedelta(hours=1)), steal=True)
        assert [e.seq for e in again.append(other_lease, [message("goes on")])] == [2]
        report = again.verify()
        assert not report.ok and any(record.id in d.location for d in report.damage)

        again.verify(repair=True)

        assert again.verify().ok, again.verify().damage
        assert again.lost_journals() == []
        rebuilt = again.read_events(record.id)
        assert not rebuilt.damage and [e.seq for e in rebuilt.events] == [1, 2, 3]
        assert all(e.payload["lost"]["reason"] == "missing" for e in rebuilt.events)
        assert again.load_point(point.id) == point
        taken = again.acquire_lease(record.id, lease_request(BOB, T0 + timedelta(hours=1)))
        assert [e.seq for e in again.append(taken, [message("back")])] == [5]

    def test_repair_closes_a_torn_last_event_and_the_journal_goes_on(
        self, store_factory: StoreFactory, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, lease = session
        store.append(lease, [message("the last words")])
        store_factory.truncate_journal(store, record.id, 7)

        report = store.verify(repair=True)

        assert store.verify().ok, store.verify().damage
        read = store.read_events(record.id)
        assert [e.seq for e in read.events] == [1, 2, 3, 4]
        lost = read.events[3].payload["lost"]
        assert lost["reason"] == "torn" and lost["quarantine"] in report.quarantined
        assert [e.seq for e in store.append(lease, [message("after repair")])] == [5]

    def test_repairing_a_sound_journal_writes_no_tombstone(
        self, store: Store, session: tuple[SessionRecord, Lease]
    ) -> None:
        record, _ = session
        before = store.read_events(record.id).events
        report = store.verify(repair=True)
        assert report.ok and not report.quarantined
        assert store.read_events(record.id).events == before
