"""Sealing checkpoints, the beat tasks, and alerting auditors when verification fails."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.core.management import call_command

from audit.checkpoints import published_public_key
from audit.events import Action
from audit.models import AuditEvent
from audit.tasks import seal_audit_checkpoint, verify_audit_chain
from tests.conftest import make_user

from .conftest import owner_sql

pytestmark = pytest.mark.django_db


def test_seal_command_writes_a_signed_read_only_checkpoint_and_records_it(events, capsys):
    call_command("seal_audit_checkpoint")
    assert "sealed seq 10" in capsys.readouterr().out
    directory = Path(settings.AUDIT_CHECKPOINT_DIR)
    [path] = directory.glob("checkpoint-*.json")
    data = json.loads(path.read_text())
    assert (data["seq"], data["head"], data["origin"]) == (10, events[-1].hash, "custos.audit")
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert (directory / "public-key.txt").read_text().strip() == published_public_key()
    event = AuditEvent.objects.get(action=Action.AUDIT_CHECKPOINT)
    assert event.seq == 11
    assert (event.details["seq"], event.details["signature"]) == (10, data["signature"])


def test_generated_signing_key_is_private(db):
    published_public_key()
    key_file = Path(settings.AUDIT_SIGNING_KEY_FILE)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_configured_signing_key_is_used(db, settings, capsys):
    settings.AUDIT_SIGNING_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    call_command("audit_public_key")
    assert capsys.readouterr().out.strip() == "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="


def test_tasks_are_on_the_beat_schedule():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["seal-audit-checkpoint"]["task"] == "audit.tasks.seal_audit_checkpoint"
    assert schedule["seal-audit-checkpoint"]["schedule"] == crontab(minute=0)
    assert schedule["verify-audit-chain"]["task"] == "audit.tasks.verify_audit_chain"


def test_seal_task_returns_json(events):
    assert seal_audit_checkpoint() == {"seq": 10, "head": events[-1].hash}


def test_verify_task_records_success_and_sends_nothing(events, auditor):
    result = verify_audit_chain()
    assert result["ok"] is True
    assert AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED).count() == 1
    assert mail.outbox == []


def test_verify_task_alerts_auditors_on_failure(events, auditor, lead):
    make_user("mute_auditor", ["auditor"], email="")
    owner_sql("UPDATE audit_auditevent SET case_reference = 'x' WHERE seq = 4")
    result = verify_audit_chain()
    assert (result["ok"], result["bad_seq"]) == (False, 4)
    [message] = mail.outbox
    assert message.to == ["auditor@example.org"]
    assert "FAILED at seq 4" in message.subject
    failed = AuditEvent.objects.get(action=Action.AUDIT_VERIFY_FAILED)
    assert failed.details["bad_seq"] == 4
