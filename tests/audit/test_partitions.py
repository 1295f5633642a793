"""The ledger partitioned by month (PostgreSQL): where rows land, partitions made ahead, and
old months exported, verified and detached (audit.partitions, audit.archive)."""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

import audit
from audit import archive, checkpoints, partitions, sealer, verification
from audit.events import Action
from audit.models import AuditEvent
from audit.tasks import create_audit_partitions
from audit.verification import verify

from .conftest import build_chain, insert_raw, set_head

pytestmark = pytest.mark.postgres

CURRENT = partitions.current_month()
LAST_MONTH = partitions.add_months(CURRENT, -1)
OLD_MONTH = partitions.add_months(CURRENT, -2)


def _start(month) -> datetime:
    return partitions.month_bounds(month)[0]


def _partition_of(seq: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM audit_auditevent WHERE seq = %s", [seq])
        return cursor.fetchone()[0]


def _note(n: int) -> AuditEvent:
    return audit.record(action=Action.CASE_NOTE_ADDED, details={"n": n})


@contextmanager
def as_role(role: str):
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {role}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


@pytest.fixture
def runtime_role(db):
    role = f"custos_rt_{os.getpid()}"
    call_command("setup_db_roles", "--role", role)
    return role


def test_the_table_is_partitioned_by_month_and_rows_land_in_their_month(db):
    assert partitions.is_partitioned()
    names = set(partitions.attached())
    expected = {partitions.partition_name(partitions.add_months(CURRENT, step)) for step in range(3)}
    assert expected | {partitions.DEFAULT_PARTITION} <= names
    event = _note(0)
    assert _partition_of(event.seq) == partitions.partition_name(CURRENT)
    # a month without its own partition: the DEFAULT partition takes the row, the insert never fails
    [row] = build_chain(1, start_seq=event.seq + 1, start=datetime(2001, 1, 1, tzinfo=_start(CURRENT).tzinfo))
    insert_raw([row])
    assert _partition_of(event.seq + 1) == partitions.DEFAULT_PARTITION


def test_sealer_and_verifier_across_a_month_boundary(db):
    partitions.create_month(LAST_MONTH)
    turn = _start(CURRENT)
    rows = build_chain(4, start=turn - timedelta(milliseconds=3))  # two events each side of the turn
    insert_raw([(*row[:-2], None, None) for row in rows])  # committed, not sealed yet
    assert [_partition_of(row[0]) for row in rows] == [partitions.partition_name(LAST_MONTH)] * 2 + [
        partitions.partition_name(CURRENT)
    ] * 2
    later = _note(9)
    assert sealer.seal().sealed == 5
    sealed = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))
    assert [hash_ for _seq, hash_ in sealed[:4]] == [row[-1] for row in rows]  # the chain build_chain computed
    assert sealed[-1][0] == later.seq
    result = verify()
    assert result.ok and result.count == 5


def test_the_beat_task_makes_the_coming_months_as_the_runtime_role(runtime_role):
    name = partitions.partition_name(partitions.add_months(CURRENT, 2))
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_auditevent DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    assert name not in partitions.attached()
    with as_role(runtime_role):
        assert create_audit_partitions() == {"created": [name]}
        assert create_audit_partitions() == {"created": []}  # idempotent
    assert name in partitions.attached()
    with connection.cursor() as cursor:  # the new partition carries the append-only triggers
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass", [name])
        assert {row[0] for row in cursor.fetchall()} >= {
            "audit_auditevent_no_update",
            "audit_auditevent_no_delete",
            "audit_auditevent_no_truncate",
        }
        cursor.execute(
            "SELECT pg_get_userbyid(relowner) <> %s FROM pg_class WHERE oid = %s::regclass", [runtime_role, name]
        )
        assert cursor.fetchone()[0]  # owned by the table owner, not by the role that asked


def _options(name: str) -> list[str] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [name])
        return cursor.fetchone()[0]


def test_every_partition_leaves_room_on_its_pages_for_the_seal(runtime_role):
    """The migrated partitions (the DEFAULT one too), one the function makes as the runtime role and
    one ``create_month`` makes all carry the fillfactor that lets a seal stay on its page (HOT)."""
    expected = [f"fillfactor={partitions.FILLFACTOR}"]
    attached = partitions.attached()
    assert partitions.DEFAULT_PARTITION in attached
    assert {name: _options(name) for name in attached} == dict.fromkeys(attached, expected)
    name = partitions.partition_name(partitions.add_months(CURRENT, 2))
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_auditevent DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    with as_role(runtime_role):
        assert partitions.ensure() == [name]
    assert _options(name) == expected
    assert _options(partitions.create_month(OLD_MONTH)) == expected


@pytest.mark.parametrize("decoy", ["audit_auditevent", "audit_auditevent_default"])
def test_a_runtime_sessions_temporary_tables_do_not_steer_the_owners_function(runtime_role, decoy):
    """The function runs with the owner's rights; the caller's temporary schema, which PostgreSQL
    searches first for relations unless told otherwise, must not supply the tables it reads or
    extends (a decoy default partition holding a row of the month would make it skip the month)."""
    month = partitions.add_months(CURRENT, 2)
    name = partitions.partition_name(month)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_auditevent DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    with as_role(runtime_role), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {decoy} (occurred_at timestamptz)")
        cursor.execute(f"INSERT INTO pg_temp.{decoy} VALUES (%s)", [_start(month) + timedelta(days=1)])  # noqa: S608 (a parameter name)
        try:
            assert partitions.ensure() == [name]
        finally:
            cursor.execute(f"DROP TABLE pg_temp.{decoy}")
    assert name in partitions.attached()
    with connection.cursor() as cursor:
        cursor.execute("SELECT proconfig FROM pg_proc WHERE proname = %s", [partitions.FUNCTION])
        assert cursor.fetchone()[0] == ["search_path=public, pg_temp"]


def test_a_month_whose_rows_went_to_the_default_partition_is_skipped_not_failed(db):
    name = partitions.partition_name(partitions.add_months(CURRENT, 2))
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_auditevent DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    insert_raw(build_chain(1, start=_start(partitions.add_months(CURRENT, 2)) + timedelta(days=3)))
    assert partitions.ensure() == []
    assert name not in partitions.attached()


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE audit_auditevent DETACH PARTITION {partition}",
        "DROP TABLE {partition}",
        "DELETE FROM {partition}",
        "TRUNCATE {partition}",
        "SELECT count(*) FROM {partition}",
        "CREATE TABLE audit_forged PARTITION OF audit_auditevent FOR VALUES FROM ('1999-01-01') TO ('1999-02-01')",
    ],
)
def test_the_runtime_role_cannot_touch_the_partitions(runtime_role, sql):
    _note(0)
    with (
        as_role(runtime_role),
        pytest.raises(DatabaseError, match=r"must be owner|permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql.format(partition=partitions.partition_name(CURRENT)))
    assert AuditEvent.objects.count() == 1


# --- archiving ---------------------------------------------------------------------------------


@pytest.fixture
def old_month(db):
    """Six events in OLD_MONTH (sealed), three live ones now, and a signed checkpoint after them."""
    partitions.create_month(OLD_MONTH)
    partitions.create_month(LAST_MONTH)
    rows = build_chain(6, start=_start(OLD_MONTH) + timedelta(days=2))
    insert_raw(rows)
    set_head(rows[-1][0], rows[-1][-1])
    for n in range(3):
        _note(n)
    sealer.seal()
    return rows


def _archive(tmp_path: Path, month=OLD_MONTH) -> str:
    from io import StringIO

    out = StringIO()
    call_command("audit_archive", "--month", f"{month:%Y-%m}", "--out", str(tmp_path / "archive"), stdout=out)
    return out.getvalue()


def test_archive_exports_verifies_records_and_detaches(old_month, tmp_path, capsys):
    checkpoint = checkpoints.seal()
    output = _archive(tmp_path)
    name = partitions.partition_name(OLD_MONTH)
    assert f"archived {OLD_MONTH:%Y-%m}: 6 events #1..#6" in output
    assert name not in partitions.attached()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        assert cursor.fetchone()[0] is None  # dropped
    assert not AuditEvent.objects.filter(seq__lte=6).exists()
    [recorded] = AuditEvent.objects.filter(action=Action.AUDIT_ARCHIVED)
    assert (recorded.details["last_seq"], recorded.details["last_hash"]) == (6, old_month[-1][-1])
    assert recorded.details["checkpoint_seq"] == checkpoint.seq
    # the file: a header, the six events with every stored field, the tail up to the checkpoint, the checkpoint
    path = tmp_path / "archive" / f"audit-{OLD_MONTH:%Y-%m}.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    events = [line["event"] for line in lines[1:-1]]
    assert [event["seq"] for event in events] == list(range(1, checkpoint.seq + 1))
    assert [event["hash"] for event in events[:6]] == [row[-1] for row in old_month]
    assert lines[-1]["checkpoint"]["signature"] == checkpoint.signature
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    # the live chain still verifies, from the archived range's last hash
    _note(7)
    result = verify()
    assert result.ok and result.from_seq == 7, result.summary()
    call_command("verify_audit", "--no-progress")
    capsys.readouterr()
    call_command("verify_audit", "--export", str(path))
    assert capsys.readouterr().out.startswith("OK export: 6 events #1..#6")
    # the incremental run resumes from a checkpoint after the boundary
    assert verify(resume_after=result.head_seq).ok


def test_a_straggler_of_the_next_month_goes_with_the_range_and_the_chain_still_verifies(db, tmp_path):
    """At a month's turn a writer of the next month may hold a lower number than the month's last
    event: it is exported with the range, stays in its own month's partition, and verification
    of the live chain accepts it there."""
    partitions.create_month(OLD_MONTH)
    partitions.create_month(LAST_MONTH)
    end = _start(LAST_MONTH)
    early = [_start(OLD_MONTH) + timedelta(days=2, milliseconds=n) for n in range(4)]
    rows = build_chain(6, times=[*early, end + timedelta(milliseconds=10), end - timedelta(milliseconds=5)])
    insert_raw(rows)
    set_head(rows[-1][0], rows[-1][-1])
    _note(7)
    sealer.seal()
    checkpoints.seal()
    _archive(tmp_path)
    assert _partition_of(5) == partitions.partition_name(LAST_MONTH)  # the straggler stayed
    [recorded] = AuditEvent.objects.filter(action=Action.AUDIT_ARCHIVED)
    assert recorded.details["last_seq"] == 6
    result = verify()
    assert result.ok and result.from_seq == 7, result.summary()


@pytest.mark.parametrize("month_end", ["2000-02-01T00:00:00.000000Z", "future"])
def test_an_archived_event_written_by_hand_hides_no_live_event(db, month_end):
    """The runtime role may INSERT any event, ``audit.archived`` included: one claiming that the
    first events were archived (with their real last hash, so the chain links) must not make
    verification skip rows still in the table, whatever month end it names."""
    for n in range(6):
        _note(n)
    sealer.seal()
    fifth = AuditEvent.objects.get(seq=5)
    if month_end == "future":
        month_end = (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    audit.record(
        action=Action.AUDIT_ARCHIVED,
        details={
            "month": "2000-01",
            "last_seq": 5,
            "last_hash": fifth.hash,
            "last_occurred_at": fifth.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "month_end": month_end,
        },
    )
    sealer.seal()
    result = verify()
    assert (result.ok, result.bad_seq, result.reason) == (False, 1, verification.ARCHIVED_STILL_HERE)


def test_archive_refuses_the_current_month(old_month, tmp_path):
    checkpoints.seal()
    with pytest.raises(CommandError, match="not over yet"):
        _archive(tmp_path, CURRENT)
    assert partitions.partition_name(CURRENT) in partitions.attached()


def test_archive_refuses_a_month_without_a_signed_checkpoint(old_month, tmp_path):
    with pytest.raises(CommandError, match="no signed checkpoint covers"):
        _archive(tmp_path)
    assert partitions.partition_name(OLD_MONTH) in partitions.attached()
    assert not (tmp_path / "archive" / f"audit-{OLD_MONTH:%Y-%m}.jsonl").exists()


def test_archive_refuses_a_month_not_entirely_sealed(db, tmp_path):
    partitions.create_month(OLD_MONTH)
    rows = build_chain(4, start=_start(OLD_MONTH) + timedelta(days=2))
    rows[1] = (*rows[1][:-2], None, None)  # left out of the chain below the head
    insert_raw(rows)
    set_head(rows[-1][0], rows[-1][-1])
    _note(0)
    checkpoints.seal()
    with pytest.raises(CommandError, match="not sealed"):
        _archive(tmp_path)
    assert partitions.partition_name(OLD_MONTH) in partitions.attached()


def test_archive_refuses_the_runtime_role(old_month, tmp_path, runtime_role):
    checkpoints.seal()
    with as_role(runtime_role), pytest.raises(CommandError, match="table owner"):
        _archive(tmp_path)
    assert partitions.partition_name(OLD_MONTH) in partitions.attached()


@pytest.mark.django_db(transaction=True)
def test_an_archive_that_cannot_take_its_lock_changes_nothing(tmp_path, monkeypatch, settings):
    """Another session holds the table (a long report): the detach gives up after the lock
    timeout, the export is removed, nothing is recorded, and a later run succeeds."""
    partitions.create_month(OLD_MONTH)
    rows = build_chain(3, start=_start(OLD_MONTH) + timedelta(days=2))
    insert_raw(rows)
    set_head(rows[-1][0], rows[-1][-1])
    _note(0)
    checkpoints.seal()
    monkeypatch.setattr(archive, "LOCK_TIMEOUT", "100ms")
    holding, release = threading.Event(), threading.Event()

    def reader() -> None:
        try:
            with transaction.atomic():
                AuditEvent.objects.count()
                holding.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert holding.wait(30)
    try:
        with pytest.raises(CommandError, match="could not detach"):
            _archive(tmp_path)
    finally:
        release.set()
        thread.join(30)
    assert partitions.partition_name(OLD_MONTH) in partitions.attached()
    assert not AuditEvent.objects.filter(action=Action.AUDIT_ARCHIVED).exists()
    assert not (tmp_path / "archive" / f"audit-{OLD_MONTH:%Y-%m}.jsonl").exists()
    assert "archived" in _archive(tmp_path)
    assert verify().ok


def _tamper(path: Path, change) -> None:
    os.chmod(path, 0o644)
    lines = path.read_text().splitlines()
    documents = [json.loads(line) for line in lines]
    change(documents)
    path.write_text("".join(json.dumps(document) + "\n" for document in documents))


def _set_details(documents):
    documents[3]["event"]["details"] = {"n": 999}


def _drop_an_event(documents):
    del documents[3]


def _alter_the_checkpoint(documents):
    documents[-1]["checkpoint"]["seq"] += 1


def _rehash_and_cut_the_tail(documents):
    """Cut the file after the month's events: every hash still checks, the signature no longer does."""
    del documents[7:-1]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set_details, "hash mismatch"),
        (_drop_an_event, "does not link"),
        (_alter_the_checkpoint, "not signed by a trusted key"),
        (_rehash_and_cut_the_tail, "does not match the last event"),
    ],
)
def test_a_tampered_export_fails(old_month, tmp_path, change, reason):
    checkpoints.seal()
    _note(5)
    checkpoints.seal()  # a tail of a few events between the month and the checkpoint
    _archive(tmp_path)
    path = tmp_path / "archive" / f"audit-{OLD_MONTH:%Y-%m}.jsonl"
    assert archive.verify_export(path).ok
    _tamper(path, change)
    check = archive.verify_export(path)
    assert not check.ok and reason in check.reason, check.summary()
    with pytest.raises(CommandError, match="FAILED at line"):
        call_command("verify_audit", "--export", str(path))


def test_a_malformed_export_fails_without_a_crash(tmp_path):
    path = tmp_path / "audit-2001-01.jsonl"
    path.write_text('{"archive": {"kind": "custos.audit.archive", "version": 1}}\n{"event": {}}\n{"checkpoint": {}}\n')
    check = archive.verify_export(path)
    assert not check.ok and "FAILED" in check.summary()
    path.write_text("not json\n")
    assert archive.verify_export(path).reason.startswith("not JSON")


def test_rows_of_an_archived_month_back_in_the_table_fail_verification(old_month, tmp_path):
    checkpoints.seal()
    _archive(tmp_path)
    assert verify().ok
    insert_raw([old_month[2]])  # an archived event put back (it lands in the DEFAULT partition)
    result = verify()
    assert (result.ok, result.bad_seq, result.reason) == (False, 3, verification.ARCHIVED_STILL_HERE)
