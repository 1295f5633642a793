"""The tamper battery: every attempt is refused by the database or named by verify_audit."""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

import audit
from audit.checkpoints import Checkpoint, seal
from audit.events import Action
from audit.ledger import HASHED_FIELDS, hash_values
from audit.verification import verify

from .conftest import insert_raw, leave_out, owner_sql, rows, set_head, triggers_off

pytestmark = pytest.mark.django_db


def assert_fails_at(seq: int, reason: str) -> None:
    result = verify()
    assert not result.ok
    assert result.bad_seq == seq, result.summary()
    assert reason in result.reason
    with pytest.raises(CommandError, match=f"FAILED at seq {seq}: "):
        call_command("verify_audit", "--no-progress")


def test_untouched_chain_verifies(events, capsys):
    seal()
    head = rows()[-1][-1]
    call_command("verify_audit", "--no-progress")  # and records the run: event 12
    out = capsys.readouterr().out
    assert out.startswith(f"OK 11 events verified, head #11 {head}")
    assert "1 signed checkpoints agree" in out


def test_edit_one_payload(events):
    owner_sql("UPDATE audit_auditevent SET case_reference = 'INV-2026-9999' WHERE seq = 4")
    assert_fails_at(4, "hash mismatch")


def test_edit_details(events):
    owner_sql("UPDATE audit_auditevent SET details = %s WHERE seq = 6", [json.dumps({"n": 600})])
    assert_fails_at(6, "hash mismatch")


def test_delete_a_middle_row(events):
    owner_sql("DELETE FROM audit_auditevent WHERE seq = 5")
    assert_fails_at(5, "sequence gap")


def test_delete_the_last_rows(events):
    owner_sql("DELETE FROM audit_auditevent WHERE seq > 7")
    assert_fails_at(8, "truncated")


def test_delete_the_last_rows_and_rewind_the_head(events):
    seal()  # covers seq 10; the checkpoint event is seq 11
    owner_sql("DELETE FROM audit_auditevent WHERE seq > 7")
    set_head(7, rows()[-1][-1])
    assert_fails_at(8, "signed checkpoint covers 10")


def test_an_event_left_out_below_the_head(events):
    """Unsealed and re-chained over: no link or hash is wrong, but an event below the head has no seal."""
    leave_out(4)
    assert_fails_at(4, "not sealed although later events are")


def test_the_first_of_several_events_left_out_is_named(events):
    leave_out(7, 4, 5)
    assert_fails_at(4, "not sealed although later events are")


def test_an_event_left_out_is_named_only_after_the_chain_checks(events):
    """A broken chain anywhere is the failure named, even after an event left out (the order of the checks)."""
    leave_out(4)
    owner_sql("UPDATE audit_auditevent SET case_reference = 'INV-2026-9999' WHERE seq = 8")
    assert_fails_at(8, "hash mismatch")


def test_an_event_left_out_before_from_seq_is_not_that_runs_concern(events):
    leave_out(4)
    assert verify(from_seq=6).ok
    result = verify(from_seq=4)
    assert (result.ok, result.bad_seq, result.count) == (False, 4, 6)
    assert "not sealed although later events are" in result.reason


def test_swap_two_rows(events):
    with triggers_off(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = -3 WHERE seq = 3")
        cursor.execute("UPDATE audit_auditevent SET seq = 3 WHERE seq = 4")
        cursor.execute("UPDATE audit_auditevent SET seq = 4 WHERE seq = -3")
    assert_fails_at(3, "prev_hash")


def test_a_duplicated_link_is_found(events):
    """Two events claiming the same predecessor (a fork): nothing in the schema refuses it (no
    UNIQUE(prev_hash)); the verifier names the second as a broken link."""
    chain = rows()
    values = list(chain[6][:-1])  # event 7 re-linked to event 5, as event 6 is, and re-hashed
    values[HASHED_FIELDS.index("prev_hash")] = chain[5][HASHED_FIELDS.index("prev_hash")]
    owner_sql(
        "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = 7",
        [values[HASHED_FIELDS.index("prev_hash")], hash_values(values)],
    )
    assert_fails_at(7, "prev_hash")


def test_a_forked_branch_appended_is_found(events):
    """An event inserted after the head that links to an old event (a second branch), head moved to it."""
    chain = rows()
    values = list(chain[-1][:-1])
    values[0] = chain[-1][0] + 1
    values[HASHED_FIELDS.index("prev_hash")] = chain[4][-1]
    values[HASHED_FIELDS.index("details")] = {"note": "fork"}
    forged = hash_values(values)
    insert_raw([(*values, forged)])
    set_head(values[0], forged)
    assert_fails_at(values[0], "prev_hash")


def test_insert_a_back_dated_row(events):
    last = rows()[-1]
    values = list(last[:-1])
    values[0] = last[0] + 1
    values[1] = last[1] - timedelta(days=30)
    values[HASHED_FIELDS.index("prev_hash")] = last[-1]
    values[HASHED_FIELDS.index("details")] = {"note": "back-dated"}
    forged = hash_values(values)
    insert_raw([(*values, forged)])  # INSERT is allowed: it needs no trigger switched off
    set_head(values[0], forged)
    assert_fails_at(11, "back-dated")


def test_rewrite_and_rehash_the_whole_chain_after_an_edit(events):
    sealed = seal()
    assert sealed.seq == 10
    audit.record(action=Action.CASE_NOTE_ADDED, details={"n": 11})
    original = rows()
    with triggers_off(), connection.cursor() as cursor:
        prev_hash = original[1][-1]  # keep events 1 and 2, rewrite from 3 on
        for row in original[2:]:
            values = list(row[:-1])
            if values[0] == 3:
                values[HASHED_FIELDS.index("case_reference")] = "INV-2026-0666"
            values[HASHED_FIELDS.index("prev_hash")] = prev_hash
            new_hash = hash_values(values)
            cursor.execute(
                "UPDATE audit_auditevent SET case_reference = %s, prev_hash = %s, hash = %s WHERE seq = %s",
                [values[HASHED_FIELDS.index("case_reference")], prev_hash, new_hash, values[0]],
            )
            prev_hash = new_hash
    set_head(original[-1][0], prev_hash)
    # Without the checkpoint the forgery is internally consistent ...
    assert verify(checkpoint_dir=Path(settings.AUDIT_CHECKPOINT_DIR) / "none").ok
    # ... the signed checkpoint outside the database gives it away.
    assert_fails_at(10, "signed checkpoint")


def _write_checkpoint(directory: Path, checkpoint: Checkpoint, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(checkpoint.as_json()))


def test_forged_checkpoint_with_another_key(events):
    seal()
    head = rows()[4]
    other_key = Ed25519PrivateKey.generate()
    forged = Checkpoint(
        seq=5, head=head[-1], sealed_at="2026-01-01T00:00:00.000000Z", origin="custos.audit", signature=""
    )
    forged = Checkpoint(**{**forged.__dict__, "signature": base64.b64encode(other_key.sign(forged.message())).decode()})
    _write_checkpoint(Path(settings.AUDIT_CHECKPOINT_DIR), forged, "checkpoint-000000000005-forged.json")
    assert_fails_at(5, "not signed by a trusted key")


def test_altered_checkpoint(events):
    sealed = seal()
    data = json.loads(Path(sealed.path).read_text())
    data["seq"] = 9  # claim the head belongs elsewhere; the signature no longer matches
    (Path(settings.AUDIT_CHECKPOINT_DIR) / "checkpoint-000000000009-altered.json").write_text(json.dumps(data))
    assert_fails_at(9, "not signed by a trusted key")


def test_checkpoint_from_another_log(events, settings):
    seal()
    settings.AUDIT_LOG_ORIGIN = "someone.else"
    assert_fails_at(10, "origin")


def test_verify_from_a_sequence_number(events):
    owner_sql("UPDATE audit_auditevent SET case_reference = 'x' WHERE seq = 2")
    assert not verify().ok
    result = verify(from_seq=3)
    assert result.ok and result.count == 8


# --- the database refuses the runtime role -----------------------------------------------


@pytest.fixture
def runtime_role(events):
    """A runtime role made by setup_db_roles (unique name; created in the test transaction)."""
    role = f"custos_rt_{os.getpid()}"
    call_command("setup_db_roles", "--role", role)
    return role


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE audit_auditevent SET case_reference = 'forged' WHERE seq = 3", "permission denied"),
        ("DELETE FROM audit_auditevent WHERE seq = 3", "permission denied"),
        ("TRUNCATE audit_auditevent", "permission denied"),
        ("ALTER TABLE audit_auditevent DISABLE TRIGGER USER", "must be owner"),
        ("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL", "must be owner"),
        ("SET session_replication_role = replica", "permission denied"),
    ],
)
def test_runtime_role_is_refused(runtime_role, sql, message):
    from django.db import DatabaseError, transaction

    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {runtime_role}")
        try:
            with pytest.raises(DatabaseError, match=message), transaction.atomic():
                cursor.execute(sql)
        finally:
            cursor.execute("RESET ROLE")
    assert verify().ok


@pytest.mark.postgres
def test_runtime_role_can_append_and_read_but_owns_nothing(runtime_role):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_auditevent'")
        assert cursor.fetchone()[0] != runtime_role
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_name = 'audit_auditevent'",
            [runtime_role],
        )
        assert {row[0] for row in cursor.fetchall()} == {"SELECT", "INSERT"}
        cursor.execute(f"SET ROLE {runtime_role}")
        try:
            event = audit.record(action=Action.CASE_NOTE_ADDED, details={"as": "runtime"})
            cursor.execute("SELECT count(*) FROM audit_auditevent")
            assert cursor.fetchone()[0] == 11
        finally:
            cursor.execute("RESET ROLE")
    assert event.seq == 11
    assert verify().ok


@pytest.mark.postgres
def test_setup_db_roles_is_idempotent(runtime_role):
    call_command("setup_db_roles", "--role", runtime_role)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_name = 'accounts_user'",
            [runtime_role],
        )
        assert {row[0] for row in cursor.fetchall()} == {"SELECT", "INSERT", "UPDATE", "DELETE"}


def test_empty_ledger_verifies(db):
    from audit.models import ChainHead

    ChainHead.objects.all().delete()
    result = verify()
    assert (result.ok, result.count, result.head_seq) == (True, 0, 0)


def test_deleting_the_chain_head_is_detected(events):
    from audit.models import ChainHead

    ChainHead.objects.all().delete()
    assert_fails_at(11, "chain head row is missing")


@pytest.mark.postgres
def test_setup_db_roles_refuses_a_superuser(db):
    with pytest.raises(CommandError, match="superuser"):
        call_command("setup_db_roles", "--role", "postgres")
