"""The sealer (audit.sealer): writers never wait for each other, and the chain is never overtaken.

Real PostgreSQL and real concurrent transactions (threads with their own connections): the
horizon rule is about what other sessions have open, which one connection cannot show.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection, connections, transaction

import audit
from audit import sealer, streams, triggers, verification
from audit.events import Action
from audit.ledger import GENESIS_HASH, compute_hash
from audit.models import AuditEvent, ChainHead, StreamDestination
from audit.verification import verify
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind, OversightCursor

from .conftest import owner_sql

pytestmark = pytest.mark.postgres


def _note(n: int, **extra) -> AuditEvent:
    return audit.record(action=Action.CASE_NOTE_ADDED, case_reference="INV-2026-0001", details={"n": n, **extra})


class OpenWriter:
    """Another session that records an event and keeps its transaction open until told."""

    def __init__(self, *, read_only: bool = False, rollback: bool = False):
        self.read_only, self.rollback = read_only, rollback
        self.started, self.finish, self.done = threading.Event(), threading.Event(), threading.Event()
        self.seq: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                if self.read_only:
                    AuditEvent.objects.count()
                else:
                    self.seq = _note(-1, writer="open").seq
                self.started.set()
                self.finish.wait(30)
                if self.rollback:
                    transaction.set_rollback(True)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self.started.set()
            connections.close_all()
            self.done.set()

    def __enter__(self) -> OpenWriter:
        self.thread.start()
        assert self.started.wait(30)
        return self

    def end(self) -> None:
        self.finish.set()
        assert self.done.wait(30)
        assert self.error is None, self.error

    def __exit__(self, *exc) -> None:
        if not self.done.is_set():
            self.end()


@contextmanager
def lock_timeout(milliseconds: int):
    """Waiting for a lock longer than this is an error, not a hang: "never waits" made testable."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {int(milliseconds)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")


@pytest.fixture
def short_wait(monkeypatch):
    """A sealer that gives up on an open writer at once (the real one waits up to two seconds)."""
    monkeypatch.setattr(sealer, "HORIZON_WAIT_SECONDS", 0.05)


def _sealed_seqs() -> list[int]:
    return list(AuditEvent.objects.filter(hash__isnull=False).order_by("seq").values_list("seq", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_writer_never_waits_for_another_writers_open_transaction():
    """Before the sealer, every append locked the chain head until its transaction committed:
    this second writer waited for the first (and here, with a lock timeout, failed)."""
    with OpenWriter() as first, lock_timeout(1000), transaction.atomic():
        second = _note(1)
        assert second.seq > first.seq
    assert AuditEvent.objects.filter(seq=second.seq).exists()


@pytest.mark.django_db(transaction=True)
def test_the_sealer_never_seals_past_an_open_writer_and_then_seals_in_order(short_wait):
    _note(0)
    with OpenWriter() as writer:
        with transaction.atomic():
            later = _note(1)  # committed, numbered after the open writer's event
        outcome = sealer.seal(wait=0.05)
        assert outcome.held_back and outcome.sealed == 0
        assert later.seq not in _sealed_seqs()
        writer.end()
    outcome = sealer.seal()
    assert not outcome.held_back and outcome.sealed == 3
    chain = list(AuditEvent.objects.order_by("seq"))
    assert [event.seq for event in chain] == [1, writer.seq, later.seq]
    assert chain[0].prev_hash == GENESIS_HASH
    assert [event.prev_hash for event in chain[1:]] == [event.hash for event in chain[:-1]]
    assert all(compute_hash(event) == event.hash for event in chain)
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (later.seq, chain[-1].hash)
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_writer_leaves_a_gap_the_chain_links_over(short_wait):
    with OpenWriter(rollback=True) as writer:
        with transaction.atomic():
            later = _note(1)
        assert sealer.seal(wait=0.05).held_back
        writer.end()
    assert sealer.seal().sealed == 1
    assert not AuditEvent.objects.filter(seq=writer.seq).exists()
    event = AuditEvent.objects.get(seq=later.seq)
    assert later.seq == writer.seq + 1 and event.prev_hash == GENESIS_HASH
    result = verify()
    assert result.ok and result.count == 1, result.summary()


@pytest.mark.django_db(transaction=True)
def test_a_long_read_only_transaction_does_not_hold_sealing_back():
    with transaction.atomic():
        _note(0)
    with OpenWriter(read_only=True):
        outcome = sealer.seal(wait=0.05)
    assert (outcome.sealed, outcome.held_back) == (1, False)


@pytest.mark.django_db(transaction=True)
def test_one_sealer_at_a_time():
    _note(0)
    sealer.seal()
    _note(1)
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def other_sealer_holds_the_head():
        try:
            with transaction.atomic():
                ChainHead.objects.select_for_update().get(pk=1)
                holding.set()
                release.wait(30)
        finally:
            connections.close_all()
            done.set()

    threading.Thread(target=other_sealer_holds_the_head, daemon=True).start()
    assert holding.wait(30)
    try:
        assert sealer.seal().busy
        assert _sealed_seqs() == [1]
    finally:
        release.set()
        assert done.wait(30)
    assert sealer.seal().sealed == 1
    assert _sealed_seqs() == [1, 2]


def test_sealing_fills_the_chain_once_and_changes_nothing_else(db):
    """The one UPDATE the trigger lets through: both chain columns of an unsealed event."""
    event = _note(0)
    for sql in (
        "UPDATE audit_auditevent SET details = '{\"n\": 9}' WHERE seq = %s",
        "UPDATE audit_auditevent SET hash = repeat('a', 64) WHERE seq = %s",  # half a seal
        "UPDATE audit_auditevent SET hash = repeat('a', 64), prev_hash = repeat('b', 64), target_id = 'x' "
        "WHERE seq = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.seq])
    sealer.seal()
    sealed = AuditEvent.objects.get(seq=event.seq)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET hash = repeat('c', 64), prev_hash = repeat('d', 64) WHERE seq = %s",
            [event.seq],
        )
    assert AuditEvent.objects.get(seq=event.seq).hash == sealed.hash


# A change to each column other than the chain's, made in the same UPDATE as a valid seal.
_CHANGED = {
    "seq": "seq + 1000000",
    "occurred_at": "occurred_at + interval '1 microsecond'",
    "actor_id": "coalesce(actor_id, 0) + 1",
    "details": "details || '{\"x\": 1}'::jsonb",
}


@pytest.mark.parametrize("column", triggers.SEALED_COLUMNS)
def test_a_seal_that_changes_any_other_column_is_refused(db, column):
    """The trigger compares every column but the two chain columns: a seal that also changes
    one of them is refused, for each column, and the event stays unsealed and unchanged."""
    event = _note(0)
    before = AuditEvent.objects.filter(seq=event.seq).values().get()
    change = _CHANGED.get(column, f"{column} || 'x'")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        seal = "hash = repeat('a', 64), prev_hash = repeat('b', 64)"
        sql = f"UPDATE audit_auditevent SET {seal}, {column} = {change} WHERE seq = %s"  # noqa: S608 (constants)
        cursor.execute(sql, [event.seq])
    assert AuditEvent.objects.filter(seq=event.seq).values().get() == before
    assert sealer.seal().sealed == 1  # the real seal still goes through


def test_the_seal_rule_names_every_column_but_the_chain(db):
    """A column added to the table must be added to the trigger's comparison: the installed
    function compares exactly the table's other columns, and no longer builds JSON of the rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'audit_auditevent'"
        )
        columns = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'audit_seal_only'")
        (source,) = cursor.fetchone()
    assert set(triggers.SEALED_COLUMNS) == columns - {"hash", "prev_hash"}
    for column in triggers.SEALED_COLUMNS:
        assert f"NEW.{column}" in source and f"OLD.{column}" in source
    assert "to_jsonb" not in source


def test_a_seal_forged_before_the_sealer_is_refused_by_the_verifier(db):
    """The runtime role may fill the chain columns (the sealer runs as it): a forged seal is a
    hash the verifier recomputes, and then the sealer cannot chain on from a false link."""
    _note(0)
    forged = _note(1)
    sealer.seal()
    later = _note(2)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET prev_hash = %s, hash = repeat('f', 64) WHERE seq = %s",
            [AuditEvent.objects.get(seq=forged.seq).hash, later.seq],
        )
    result = verify()
    assert not result.ok and result.bad_seq == later.seq and "hash mismatch" in result.reason


def test_an_event_whose_seal_was_removed_breaks_the_chain_there(db):
    for n in range(5):
        _note(n)
    sealer.seal()
    owner_sql("UPDATE audit_auditevent SET prev_hash = NULL, hash = NULL WHERE seq = 3")
    result = verify()
    assert (result.ok, result.bad_seq) == (False, 3)
    assert "not linked" in result.reason and "found 4" in result.reason


def test_an_event_left_out_of_a_rechained_ledger_is_found(db):
    """A party with the owner's rights unseals event 3 and re-chains 4 and 5 (and the head)
    over it: every link and hash checks out, but an event below the head has no seal."""
    for n in range(5):
        _note(n)
    sealer.seal()
    chain = {event.seq: event for event in AuditEvent.objects.order_by("seq")}
    owner_sql("UPDATE audit_auditevent SET prev_hash = NULL, hash = NULL WHERE seq = 3")
    prev_hash = chain[2].hash
    for seq in (4, 5):
        chain[seq].prev_hash = prev_hash
        prev_hash = compute_hash(chain[seq])
        owner_sql(
            "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
            [chain[seq].prev_hash, prev_hash, seq],
        )
    ChainHead.objects.filter(pk=1).update(hash=prev_hash)
    result = verify()
    assert (result.ok, result.bad_seq, result.reason) == (False, 3, verification.LEFT_OUT)


def test_a_deleted_head_is_not_recreated_under_a_sealed_chain(db):
    _note(0)
    sealer.seal()
    ChainHead.objects.all().delete()
    _note(1)
    with pytest.raises(sealer.HeadMissing):
        sealer.seal()
    assert sealer.seal_first() is None  # readers go on; verification names the cause
    result = verify()
    assert not result.ok and "chain head row is missing" in result.reason


def test_a_head_rewound_to_an_earlier_event_stops_the_sealer_instead_of_forking(db):
    """The runtime role may move the head row. Pointed back at an earlier event (its real hash),
    the sealer would give the next event the same predecessor as a sealed one: it refuses."""
    first = [_note(n) for n in range(3)]
    sealer.seal()
    sealed = AuditEvent.objects.get(seq=first[0].seq)
    ChainHead.objects.filter(pk=1).update(seq=sealed.seq, hash=sealed.hash, prev_hash=sealed.prev_hash)
    waiting = _note(9)
    with pytest.raises(sealer.HeadMismatch, match="past the chain head"):
        sealer.seal()
    assert AuditEvent.objects.get(seq=waiting.seq).hash is None
    assert not AuditEvent.objects.filter(prev_hash=sealed.hash).exclude(seq=first[1].seq).exists()
    assert verify().ok  # the chain itself is whole: nothing forked


def test_a_head_with_a_forged_hash_stops_the_sealer(db):
    _note(0)
    sealer.seal()
    ChainHead.objects.filter(pk=1).update(hash="e" * 64)
    waiting = _note(1)
    with pytest.raises(sealer.HeadMismatch, match="does not match"):
        sealer.seal()
    assert AuditEvent.objects.get(seq=waiting.seq).hash is None
    result = verify()
    assert not result.ok and "chain head" in result.reason


@pytest.mark.django_db(transaction=True)
def test_streams_and_the_oversight_scan_never_read_past_an_open_writer(short_wait):
    """Both keep a cursor by seq: an event committed behind it later would be skipped for ever,
    so they read sealed events only, and the sealer never passes an open writer."""
    destination = StreamDestination.objects.create(name="siem", kind="webhook", url="https://siem.example/in")
    with transaction.atomic():
        first = _note(0)
    sealer.seal()  # as the beat task would have, before the writer below began
    with OpenWriter() as writer:
        with transaction.atomic():
            later = _note(1)
        alerts_scan()
        assert OversightCursor.objects.get(pk=1).last_seq == first.seq
        assert [row[0] for row in streams._batch(destination)[0]] == [first.seq]
        writer.end()
    alerts_scan()
    assert OversightCursor.objects.get(pk=1).last_seq >= later.seq
    delivered = [row[0] for row in streams._batch(destination)[0]]
    assert delivered[:3] == [first.seq, writer.seq, later.seq]


@pytest.mark.django_db(transaction=True)
def test_an_event_waiting_too_long_raises_one_critical_alert_and_verification_reports_it(settings, short_wait):
    settings.AUDIT_SEAL_MAX_AGE_SECONDS = 0
    with transaction.atomic():
        _note(0)
    sealer.seal()
    with OpenWriter() as writer:
        with transaction.atomic():
            waiting = _note(1)
        alerts_scan()
        alerts = list(Alert.objects.filter(kind=AlertKind.LEDGER_UNSEALED))
        assert [(alert.event_seq, alert.severity) for alert in alerts] == [(waiting.seq, "critical")]
        assert "waited" in alerts[0].summary and f"#{waiting.seq}" in alerts[0].summary
        alerts_scan()  # the same event still waiting: no second alert
        assert Alert.objects.filter(kind=AlertKind.LEDGER_UNSEALED).count() == 1
        result = verify()
        assert result.ok and result.unsealed >= 1 and result.unsealed_age_seconds is not None
        assert "not sealed yet" in result.summary()
        writer.end()
    alerts_scan()
    assert not AuditEvent.objects.filter(hash__isnull=True).exists()
    assert Alert.objects.filter(kind=AlertKind.LEDGER_UNSEALED).count() == 1
    raised = AuditEvent.objects.filter(action=Action.ALERT_RAISED, details__kind=AlertKind.LEDGER_UNSEALED)
    assert raised.count() == 1


@pytest.mark.redis
def test_the_beat_seal_rings_the_oversight_scan_when_it_chained_something(db):
    """The scan reads sealed events only: what the beat seal chains late is scanned now, not at the
    scan's next beat. Nothing sealed, nothing rung."""
    from audit.tasks import seal_audit_events
    from custos_testing.worker import purge_broker
    from tests.investigations.test_alerts import scans_on_the_broker

    _note(0)
    purge_broker()
    assert seal_audit_events()["sealed"] == 1
    assert scans_on_the_broker() == [([], False)]
    assert seal_audit_events()["sealed"] == 0
    assert scans_on_the_broker() == []
