"""Incremental verification: from the newest signed checkpoint the last complete run covered, to the head."""

from __future__ import annotations

import pytest
from django.core.management import call_command

import audit
from audit import checkpoints, sealer
from audit.events import Action
from audit.models import AuditEvent
from audit.runs import last_anchored_head, verify_and_record
from audit.tasks import verify_audit_chain
from audit.verification import verify

from .conftest import owner_sql

pytestmark = pytest.mark.django_db


def _more(count: int) -> None:
    for n in range(count):
        audit.record(action=Action.CASE_NOTE_ADDED, case_reference="INV-2026-0002", details={"more": n})
    sealer.seal()  # sealed before anyone edits them: an edit before sealing is the triggers' to stop


def test_the_daily_task_checks_only_what_came_after_the_last_verified_checkpoint(events):
    checkpoints.seal()  # signs #10, recorded as #11
    assert verify_audit_chain()["count"] == 11  # nothing verified before: the whole chain (1-11), recorded as #12
    assert last_anchored_head() == 11
    _more(5)  # 13-17
    result = verify_audit_chain()  # resumes after checkpoint #10: events 11-17
    assert (result["ok"], result["count"], result["from_seq"], result["resumed_after"]) == (True, 7, 11, 10)
    assert result["anchored"] is True
    assert last_anchored_head() == 17


def test_without_a_checkpoint_the_incremental_run_checks_everything(events):
    verify_audit_chain()
    _more(3)
    result = verify_audit_chain()
    assert (result["ok"], result["from_seq"], result["resumed_after"], result["count"]) == (True, 1, None, 14)


def test_a_run_from_a_later_sequence_number_is_not_a_starting_point(events):
    checkpoints.seal()  # #10 signed, recorded as #11
    verify_and_record(source="command", from_seq=5)  # trusts the stored hash of #4: not anchored
    assert last_anchored_head() is None
    assert verify_audit_chain()["resumed_after"] is None


def test_an_edit_after_the_checkpoint_is_found(events):
    checkpoints.seal()  # #10 signed, recorded as #11
    verify_audit_chain()  # 1-11, recorded as #12
    _more(3)  # 13-15
    owner_sql("UPDATE audit_auditevent SET details = '{\"more\": 99}' WHERE seq = 14")
    result = verify_audit_chain()
    assert (result["ok"], result["bad_seq"]) == (False, 14)
    assert "hash mismatch" in result["reason"]


def test_a_rewritten_checkpointed_event_is_found(events):
    checkpoints.seal()  # #10 signed, recorded as #11
    verify_audit_chain()  # 1-11, recorded as #12
    # The owner changes the checkpointed event's hash and relinks the next one to it.
    owner_sql("UPDATE audit_auditevent SET hash = %s WHERE seq = 10", ["f" * 64])
    owner_sql("UPDATE audit_auditevent SET prev_hash = %s WHERE seq = 11", ["f" * 64])
    result = verify(resume_after=11)
    assert (result.ok, result.bad_seq) == (False, 10)
    assert "signed checkpoint" in result.reason


def test_an_edit_before_the_checkpoint_is_left_to_the_complete_run(events):
    checkpoints.seal()  # #10
    verify_audit_chain()
    owner_sql("UPDATE audit_auditevent SET case_reference = 'x' WHERE seq = 3")
    assert verify(resume_after=11).ok  # the incremental run trusts the signed checkpoint #10 ...
    complete = verify()  # ... the complete run (verify_audit without --incremental) checks everything
    assert (complete.ok, complete.bad_seq) == (False, 3)


def test_the_weekly_complete_run_finds_an_edit_the_daily_run_trusts(events, settings):
    from celery.schedules import crontab

    from audit.tasks import verify_audit_chain_complete

    entry = settings.CELERY_BEAT_SCHEDULE["verify-audit-chain-complete"]
    assert entry["task"] == "audit.tasks.verify_audit_chain_complete"
    assert entry["schedule"] == crontab(minute=30, hour=2, day_of_week="sun")
    checkpoints.seal()  # #10
    verify_audit_chain()
    owner_sql("UPDATE audit_auditevent SET case_reference = 'x' WHERE seq = 3")
    assert verify_audit_chain()["ok"]  # the daily run starts after the verified checkpoint
    result = verify_audit_chain_complete()
    assert (result["ok"], result["bad_seq"], result["from_seq"]) == (False, 3, 1)
    assert AuditEvent.objects.filter(action=Action.AUDIT_VERIFY_FAILED).exists()


def test_the_command_can_run_incrementally(events, capsys):
    checkpoints.seal()  # #10 signed, recorded as #11
    call_command("verify_audit", "--no-progress")  # 1-11, recorded as #12
    call_command("verify_audit", "--no-progress", "--incremental")
    out = capsys.readouterr().out.splitlines()[-1]
    assert out.startswith("OK 2 events verified since signed checkpoint #10, head #12 ")
    recorded = AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED).last()
    assert (recorded.seq, recorded.details["resumed_after"], recorded.details["from_seq"]) == (13, 10, 11)
