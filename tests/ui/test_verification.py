"""Defect 8: every verification is recorded where the page reads it; "Verify now" runs on the worker."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit import runs
from audit.events import Action
from audit.models import AuditEvent, VerificationRun

pytestmark = pytest.mark.django_db


def test_a_command_line_verification_shows_on_the_page(auditor, client):
    call_command("verify_audit", "--no-progress")
    event = AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED).get()
    assert event.details["source"] == "command line" and event.details["ok"] is True
    client.force_login(auditor)
    page = client.get(reverse("audit:verification")).content.decode()
    assert "No verification has run yet" not in page
    assert "command line" in page and f"{event.details['count']}</dd>" in page


def test_verify_now_queues_a_run_after_commit_and_records_its_outcome(
    auditor, client, django_capture_on_commit_callbacks
):
    client.force_login(auditor)
    page = client.get(reverse("audit:verification")).content.decode()
    assert "Verify now</button>" in page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("audit:verification_start"))
    assert response.status_code == 302 and len(callbacks) == 1
    run = VerificationRun.objects.get()
    assert run.requested_by == auditor.username and run.status == "queued"
    following = client.get(reverse("audit:verification")).content.decode()
    assert "js/verification-run.js" in following and "<progress" in following
    # a second press while it is queued starts nothing more
    with django_capture_on_commit_callbacks(execute=False) as again:
        client.post(reverse("audit:verification_start"))
    assert not again and VerificationRun.objects.count() == 1

    done = runs.run_execute(run.pk)  # what the worker's task does
    assert done.status == "done" and done.ok is True and done.percent == 100
    assert runs.run_execute(run.pk) is None  # a second delivery finds it claimed
    event = AuditEvent.objects.get(seq=done.event_seq)
    assert event.action == Action.AUDIT_VERIFIED and event.actor_username == auditor.username
    assert event.details["source"] == "Verify now" and event.details["run"] == run.pk
    status = client.get(reverse("audit:verification_status", args=[run.pk])).json()
    assert status["done"] and status["ok"] and status["percent"] == 100


@pytest.mark.parametrize("persona", ["lead", "reviewer", "admin_user", "superuser"])
def test_only_auditors_start_a_verification(persona, request, client):
    client.force_login(request.getfixturevalue(persona))
    assert client.post(reverse("audit:verification_start")).status_code == 404  # as every auditor page
    assert not VerificationRun.objects.exists()


def test_progress_is_reported_while_verifying(auditor, monkeypatch):
    from audit import sealer, verification

    for number in range(12):
        runs.record(action=Action.AUDIT_VIEWED, details={"n": number})
    monkeypatch.setattr(verification, "PROGRESS_EVERY", 5)
    sealer.seal()  # verify() reads sealed events; verify_and_record seals first
    seen = []
    result = verification.verify(on_progress=lambda checked, total: seen.append((checked, total)))
    assert result.ok and seen and seen[0][0] == 5 and seen[-1][1] == result.count
