"""audit.record: chaining, rollback, normalisation, and the model-level append-only wall."""

from __future__ import annotations

import itertools

import pytest
from django.db import DatabaseError, connection, transaction

import audit
from accounts.models import User
from audit import ledger, sealer, triggers
from audit.context import RequestMeta, reset_meta, set_meta
from audit.events import Action
from audit.ledger import GENESIS_HASH, PAYLOAD_FIELDS, compute_hash
from audit.models import AppendOnlyError, AuditEvent, ChainHead
from audit.verification import verify
from tests.conftest import make_user


def test_record_chains_events_with_contiguous_sequence(events):
    seqs = [event.seq for event in events]
    assert seqs == list(range(seqs[0], seqs[0] + 10))
    stored = list(AuditEvent.objects.order_by("seq"))
    assert stored[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.hash
    for event in stored:
        assert compute_hash(event) == event.hash
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (stored[-1].seq, stored[-1].hash)
    assert all(a.occurred_at <= b.occurred_at for a, b in itertools.pairwise(stored))


def test_rolled_back_action_leaves_no_event_and_the_chain_links_over_its_number(events):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        audit.record(action=Action.CASE_OPENED, case_reference="INV-2026-0002")
        raise Boom
    assert not AuditEvent.objects.filter(case_reference="INV-2026-0002").exists()
    after = audit.record(action=Action.CASE_OPENED, case_reference="INV-2026-0003")
    # PostgreSQL's sequence does not give a rolled-back number back; SQLite chains under the head.
    assert after.seq == events[-1].seq + (2 if connection.vendor == "postgresql" else 1)
    sealer.seal()
    after = AuditEvent.objects.get(seq=after.seq)
    assert after.prev_hash == events[-1].hash
    assert verify().ok


def test_record_copies_actor_and_survives_user_deletion(db):
    user = make_user("leaver")
    event = audit.record(action=Action.CASE_UPDATED, actor=user, target=user, details={"why": "test"})
    user_id = user.pk
    user.delete()
    stored = AuditEvent.objects.get(seq=event.seq)
    assert (stored.actor_ref, stored.actor_username, stored.actor_id) == (str(user_id), "leaver", user_id)
    assert (stored.target_type, stored.target_id) == ("accounts.user", str(user_id))
    assert verify().ok


def test_unknown_action_is_refused(db):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(action="case.vanished")


def test_details_are_normalised_so_the_hash_survives_the_database(db):
    event = audit.record(
        action=Action.QUERY_COMPLETED,
        details={"ratio": 0.5, "big": 1e300, "nul": "a\x00b", "tags": {"b", "a"}, "nested": {"z": [1, None, True]}},
    )
    sealer.seal()
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.details == {
        "ratio": "0.5",
        "big": "1e+300",
        "nul": "a\ufffdb",
        "tags": ["a", "b"],
        "nested": {"z": [1, None, True]},
    }
    assert compute_hash(stored) == stored.hash


@pytest.mark.skipif(connection.vendor != "postgresql", reason="record_statement is PostgreSQL's (SQLite: record)")
def test_an_event_folded_into_a_callers_statement_is_the_one_record_writes(db):
    """``record_statement`` (the append written inside an action's own statement) stores, byte for
    byte, what ``record`` stores for the same arguments: same cleaning, columns and JSON; ``seq``
    from the same sequence and the clock read after it; once per row of the caller's CTE."""
    actor = make_user("zoe")
    arguments = {
        "action": Action.QUERY_COMPLETED,
        "actor": actor,
        "target": actor,
        "case_reference": "INV-" + "é" * 40,  # cut to 32
        "details": {"ratio": 0.5, "nul": "a\x00b", "tags": {"b", "a"}, "é": [1, None, True], "big": 2**40},
    }
    columns = ", ".join(f"{name}::text" for name in PAYLOAD_FIELDS)
    token = set_meta(RequestMeta(ip="192.0.2.1", user_agent="probe\x00/ü" + "x" * 500, request_id="r" * 80))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            recorded = audit.record(**arguments)
            folded = {}
            for source, rows in (("one_row", "SELECT 1"), ("no_row", "SELECT 1 WHERE false")):
                sql, params = ledger.record_statement(source=source, **arguments)
                statement = f"WITH {source} AS ({rows}), appended AS ({sql}) SELECT seq, occurred_at FROM appended"  # noqa: S608
                cursor.execute(statement, params)
                folded[source] = cursor.fetchall()
            [(seq, occurred_at)] = folded["one_row"]
            assert folded["no_row"] == []
            both = f"SELECT seq, {columns} FROM audit_auditevent WHERE seq IN (%s, %s) ORDER BY seq"  # noqa: S608
            cursor.execute(both, [recorded.seq, seq])
            (first, *mine), (second, *theirs) = cursor.fetchall()
    finally:
        reset_meta(token)
    assert (first, second) == (recorded.seq, seq) and seq > recorded.seq and occurred_at >= recorded.occurred_at
    assert mine == theirs
    assert mine[PAYLOAD_FIELDS.index("case_reference")] == "INV-" + "é" * 28
    sealer.seal()
    assert verify().ok


@pytest.mark.skipif(connection.vendor != "postgresql", reason="record_statement is PostgreSQL's (SQLite: record)")
def test_a_folded_event_about_a_row_its_statement_inserts_names_it_as_record_would(db):
    """``target_key``: the target's id comes from the caller's CTE (the row it inserts), stored as
    ``record`` stores ``str(pk)``; everything else is the caller's arguments, as ``record`` has them."""
    actor = make_user("target")
    with transaction.atomic(), connection.cursor() as cursor:
        recorded = audit.record(action=Action.CASE_UPDATED, actor=actor, target=actor, details={"n": 1})
        sql, params = ledger.record_statement(
            source="made", target_key="id", action=Action.CASE_UPDATED, actor=actor, target=User(), details={"n": 1}
        )
        statement = f"WITH made AS (SELECT %s::bigint AS id), appended AS ({sql}) SELECT seq FROM appended"  # noqa: S608
        cursor.execute(statement, [actor.pk, *params])
        [(seq,)] = cursor.fetchall()
    stored = {event.seq: event for event in AuditEvent.objects.filter(seq__in=[recorded.seq, seq])}
    assert stored[seq].target_id == str(actor.pk) and stored[seq].target_type == "accounts.user"
    for name in ledger.PAYLOAD_FIELDS:
        assert getattr(stored[seq], name) == getattr(stored[recorded.seq], name), name
    with pytest.raises(ValueError, match="not the name"):
        ledger.record_statement(source="made", target_key='id"; DROP', action=Action.CASE_UPDATED)


def test_request_metadata_is_recorded(client, lead):
    client.post("/accounts/login/", {"login": "lead", "password": "wrong"}, HTTP_USER_AGENT="probe/1.0")
    event = AuditEvent.objects.get(action=Action.AUTH_LOGIN_FAILED)
    assert event.ip == "127.0.0.1"
    assert event.user_agent == "probe/1.0"
    assert len(event.request_id) == 32


# --- the model wall ----------------------------------------------------------------------


def test_model_refuses_changes_and_deletes(events):
    event = AuditEvent.objects.get(seq=events[3].seq)
    event.details = {"forged": True}
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(seq=event.seq).update(details={})
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(seq=event.seq).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([event], ["details"])
    assert AuditEvent.objects.get(seq=event.seq).details == {"n": 3}


def test_model_refuses_writes_that_bypass_record(db):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.create(
            seq=1, occurred_at="2026-01-01T00:00Z", action=Action.CASE_OPENED, prev_hash="x", hash="y"
        )
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_create([AuditEvent(seq=1, action=Action.CASE_OPENED, prev_hash="x", hash="y")])
    assert not AuditEvent.objects.exists()


# --- the trigger wall (as the owner) -----------------------------------------------------


def test_triggers_are_installed(db):
    expected = set(triggers.NAMES) if connection.vendor == "postgresql" else set(triggers.NAMES[:2])
    assert triggers.installed(connection) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET case_reference = 'forged'",
        "DELETE FROM audit_auditevent WHERE seq = (SELECT MAX(seq) FROM audit_auditevent)",
        "DELETE FROM audit_auditevent",
    ],
)
def test_triggers_refuse_update_and_delete_even_for_the_owner(events, sql):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditEvent.objects.count() == 10


@pytest.mark.postgres
def test_trigger_refuses_truncate_even_for_the_owner(events):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 10


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pattern-ops index copies exist only on PostgreSQL")
def test_the_ledger_keeps_only_the_indexes_its_queries_use(db):
    """Every append writes every index, and a seal that changes an indexed column writes them all
    again: only the lookups' btrees and the primary key stay. No pattern-ops copy (no query
    matches a prefix), nothing on ``hash``/``prev_hash`` (no query looks an event up by hash),
    no partial index (its predicate would name ``hash``), nothing on ``actor_id`` alone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent'")
        indexes = dict(cursor.fetchall())
    assert not [name for name, definition in indexes.items() if "pattern_ops" in definition or "WHERE" in definition]
    columns = sorted(definition.split("(", 1)[1].rstrip(")") for definition in indexes.values())
    # the primary key holds the partition key too (monthly partitions, ``audit.partitions``)
    assert columns == sorted(
        ["seq, occurred_at", "occurred_at", "actor_username", "action", "case_reference", "target_type, target_id"]
    )


@pytest.mark.postgres
def test_sealing_is_a_hot_update_even_on_pages_the_writers_filled(db):
    """The seal fills two columns no index covers, and the partitions' fillfactor leaves room on
    each heap page for the sealed version of every row on it: PostgreSQL updates the rows in place
    (HOT) and writes no index entry. An index on ``hash`` or ``prev_hash`` (or a partial one naming
    them) would make every seal a cold update; so would full pages (no fillfactor), where only the
    last page's seals could stay on their page. 300 events of about 350 bytes fill several pages."""

    def counts() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(  # the table and its monthly partitions, where the rows are
                "SELECT coalesce(sum(n_tup_upd), 0), coalesce(sum(n_tup_hot_upd), 0) FROM pg_stat_xact_user_tables "
                "WHERE relid = 'audit_auditevent'::regclass "
                "OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'audit_auditevent'::regclass)"
            )
            return cursor.fetchone()

    note = "x" * 200
    audit.record_many([{"action": Action.CASE_NOTE_ADDED, "details": {"n": n, "note": note}} for n in range(300)])
    before = counts()
    assert sealer.seal().sealed == 300
    after = counts()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT (ctid::text::point)[0]) FROM audit_auditevent")
        assert cursor.fetchone()[0] > 5  # the events span many heap pages
    assert (after[0] - before[0], after[1] - before[1]) == (300, 300)
