"""audit.record_many: the same chain as record, a fixed number of statements, never a fork."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

import audit
from audit import sealer
from audit.events import Action
from audit.ledger import GENESIS_HASH, compute_hash
from audit.models import AppendOnlyError, AuditEvent, ChainHead
from audit.verification import verify
from tests.conftest import make_user


def notes(count: int, **extra) -> list[dict]:
    return [
        {"action": Action.GRANT_EXPIRED, "target": ("investigations.grant", n), "details": {"n": n}, **extra}
        for n in range(count)
    ]


def chain() -> list[tuple]:
    """The ledger sealed (on PostgreSQL the sealer chains what has committed)."""
    sealer.seal()
    return list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))


def assert_one_chain(expected: int, *, gaps: bool = False) -> None:
    """Exactly ``expected`` events, seq 1..expected (or rising, with ``gaps``: a rolled-back
    writer's numbers on PostgreSQL), each linked to the one before, and verify() agrees."""
    rows = chain()
    seqs = [row[0] for row in rows]
    if gaps:
        assert len(seqs) == expected and seqs == sorted(set(seqs))
    else:
        assert seqs == list(range(1, expected + 1))
    assert rows[0][1] == GENESIS_HASH
    assert all(after[1] == before[2] for before, after in itertools.pairwise(rows))
    result = verify()
    assert result.ok, result.summary()
    assert result.count == expected


def test_record_many_mixed_with_record_forms_one_verified_chain(db):
    actor = make_user("writer")  # records its own events first
    before = AuditEvent.objects.count()
    audit.record(action=Action.CASE_OPENED, actor=actor, case_reference="INV-2026-0001")
    written = audit.record_many(notes(5, actor=actor, case_reference="INV-2026-0001"))
    audit.record(action=Action.CASE_CLOSED, case_reference="INV-2026-0001")
    audit.record_many([{"action": Action.CASE_NOTE_ADDED, "details": {"price": 1.5, "tags": {"b", "a"}}}])
    assert [event.seq for event in written] == [before + 2, before + 3, before + 4, before + 5, before + 6]
    sealer.seal()
    stored = list(AuditEvent.objects.filter(seq__gt=before).order_by("seq"))
    actions = [event.action for event in stored]
    assert actions == ["case.opened"] + ["grant.expired"] * 5 + ["case.closed", "case.note_added"]
    for event in stored:
        assert compute_hash(event) == event.hash
    if connection.vendor == "sqlite":  # chained at once; on PostgreSQL by the sealer, after commit
        assert [(e.seq, e.hash, e.prev_hash) for e in written] == [(e.seq, e.hash, e.prev_hash) for e in stored[1:6]]
    assert stored[1].actor_username == "writer" and stored[1].target_id == "0"
    assert stored[-1].details == {"price": "1.5", "tags": ["a", "b"]}  # cleaned exactly as record() cleans
    assert all(a.occurred_at <= b.occurred_at for a, b in itertools.pairwise(stored))
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash, head.prev_hash) == (stored[-1].seq, stored[-1].hash, stored[-1].prev_hash)
    assert_one_chain(before + 8)


def test_empty_list_is_a_no_op(db):
    audit.record(action=Action.CASE_OPENED)
    head = ChainHead.objects.values_list("seq", "hash").get(pk=1)
    with CaptureQueriesContext(connection) as queries:
        assert audit.record_many([]) == []
    assert len(queries) == 0
    assert ChainHead.objects.values_list("seq", "hash").get(pk=1) == head
    assert AuditEvent.objects.count() == 1


def test_record_many_on_a_fresh_database_creates_the_head(db):
    ChainHead.objects.all().delete()
    audit.record_many(notes(3))
    assert_one_chain(3)


def test_rollback_leaves_nothing(db):
    audit.record(action=Action.CASE_OPENED)
    head = ChainHead.objects.values_list("seq", "hash", "prev_hash").get(pk=1)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        audit.record_many(notes(50))
        raise Boom
    assert AuditEvent.objects.count() == 1
    assert ChainHead.objects.values_list("seq", "hash", "prev_hash").get(pk=1) == head
    audit.record_many(notes(2))
    assert_one_chain(3, gaps=connection.vendor == "postgresql")


def test_an_unknown_action_writes_nothing(db):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record_many([*notes(3), {"action": "grant.vanished"}])
    assert not AuditEvent.objects.exists()


def test_the_model_refuses_bulk_writes_that_the_ledger_did_not_chain(db):
    forged = AuditEvent(seq=1, action=Action.CASE_OPENED, prev_hash=GENESIS_HASH, hash="f" * 64)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.ledger_insert([forged], rows_per_statement=10)
    assert not AuditEvent.objects.exists()


def test_statement_count_does_not_depend_on_the_number_of_events(db):
    audit.record(action=Action.CASE_OPENED)  # the head exists: no genesis statements below
    counts = {}
    for size in (10, 1000):
        with CaptureQueriesContext(connection) as queries:
            audit.record_many(notes(size))
        counts[size] = [query["sql"].split()[0].upper() for query in queries]
    assert counts[10] == counts[1000]
    # PostgreSQL: one INSERT (WITH ... RETURNING), no lock. SQLite: the head locked (an UPDATE
    # that takes the write lock) and read, one INSERT, the head moved.
    expected = ["WITH"]
    if connection.vendor == "sqlite":
        expected = ["UPDATE", "SELECT", "INSERT", "UPDATE"]
    assert [word for word in counts[1000] if word not in {"SAVEPOINT", "RELEASE"}] == expected
    assert_one_chain(1011)


def _append(kind: str, thread: int, barrier: threading.Barrier, errors: list, rounds: int) -> None:
    try:
        barrier.wait()
        for number in range(rounds):
            with transaction.atomic():
                if kind == "many":
                    audit.record_many(notes(7, case_reference=f"T{thread}-{number}"))
                else:
                    audit.record(action=Action.QUERY_COMPLETED, details={"thread": thread, "n": number})
    except Exception as error:  # reported by the test
        errors.append(error)
    finally:
        connections.close_all()


@pytest.mark.postgres
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_record_many_and_record_in_parallel_never_fork_the_chain():
    ChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})
    kinds = ["many", "one", "many", "one", "many", "one"]
    rounds = 60
    barrier = threading.Barrier(len(kinds))
    errors: list = []
    threads = [
        threading.Thread(target=_append, args=(kind, number, barrier, errors, rounds))
        for number, kind in enumerate(kinds)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = kinds.count("many") * rounds * 7 + kinds.count("one") * rounds
    assert_one_chain(expected)
    # Each record_many call's events keep their order (numbers drawn row by row, so another
    # writer's event may fall between two of them: the chain does not mind).
    for reference in ("T0-0", "T2-17", "T4-59"):
        batch = AuditEvent.objects.filter(case_reference=reference).order_by("seq").values_list("target_id", flat=True)
        assert list(batch) == [str(n) for n in range(7)]
    assert connection.vendor == "postgresql"


def test_record_many_cleans_each_event_exactly_as_record_does(db, rf):
    """record_many builds its payloads in bulk (``_payloads``); they must equal ``_payload``'s, field for field."""
    from datetime import UTC, datetime

    from django.contrib.auth.models import AnonymousUser

    from audit import ledger
    from audit.context import RequestMeta, reset_meta, set_meta

    actor = make_user("cleaner")
    request = rf.get("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="agent\x00" + "u" * 500)
    request.request_id = "r" * 80
    odd = 'é\x00\ud800"\\\n\t' + "x" * 200
    events = [
        {"action": Action.CASE_OPENED, "actor": actor, "target": actor, "case_reference": odd},
        {"action": "grant.expired", "actor": AnonymousUser(), "target": ("investigations.grant", 7)},
        {"action": Action.CASE_NOTE_ADDED, "request": request, "details": {"f": 1.5, "n": float("nan"), odd: {odd}}},
        {"action": Action.CASE_NOTE_ADDED, "details": {"at": datetime(2026, 1, 2, tzinfo=UTC), "l": (1, None, True)}},
        {"action": Action.CASE_CLOSED, "case_reference": None, "details": None},
    ]
    token = set_meta(RequestMeta(ip="198.51.100.1", user_agent="ua\x00", request_id="q" * 70))
    try:
        assert ledger._payloads(events) == [ledger._payload(**event) for event in events]
    finally:
        reset_meta(token)
    with pytest.raises(TypeError):
        ledger._payloads([{"action": Action.CASE_OPENED, "acter": actor}])
    with pytest.raises(TypeError):
        ledger._payload(action=Action.CASE_OPENED, acter=actor)


def test_stored_events_read_back_as_written_and_verify(db):
    """Text with quotes, backslashes, control and non-ASCII characters survives the bulk INSERT unchanged."""
    audit.record(action=Action.CASE_OPENED)
    odd = 'é ü "q" \\ \n\t\x01 ☃ 𝄞'
    written = audit.record_many(
        [{"action": Action.CASE_NOTE_ADDED, "case_reference": odd[:32], "details": {odd: [odd, 1, None]}}] * 3
    )
    sealer.seal()
    stored = list(AuditEvent.objects.filter(seq__gt=1).order_by("seq"))
    fields = [field.attname for field in AuditEvent._meta.concrete_fields]
    if connection.vendor == "postgresql":  # the sealer wrote the chain after the INSERT returned
        fields = [name for name in fields if name not in {"prev_hash", "hash"}]
    assert [[getattr(e, name) for name in fields] for e in stored] == [
        [getattr(e, name) for name in fields] for e in written
    ]
    assert all(compute_hash(event) == event.hash for event in stored)
    assert_one_chain(4)


def test_returning_false_writes_the_same_chain_and_returns_nothing(db):
    audit.record(action=Action.CASE_OPENED)
    with CaptureQueriesContext(connection) as queries:
        assert audit.record_many(notes(20), returning=False) is None
    statements = [q["sql"].split()[0].upper() for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert statements == (["UPDATE", "SELECT", "INSERT", "UPDATE"] if connection.vendor == "sqlite" else ["WITH"])
    assert list(AuditEvent.objects.filter(seq__gt=1).values_list("target_id", flat=True)) == [str(n) for n in range(20)]
    assert_one_chain(21)
