"""Expiry and expiry warnings: hygiene that is safe to run twice and never the only wall."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from audit.models import AuditEvent
from investigations import tasks
from investigations.access import object_perms
from investigations.actions.lifecycle import grants_expire_due, grants_warn_expiring
from investigations.models import Grant, GrantStatus
from investigations.models.grant import db_now

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _move_expiry(grant: Grant, delta: timedelta) -> None:
    # Stands for time passing: the database clock decides, so the row's deadline moves instead,
    # relative to that clock (on PostgreSQL it is the start of the test's transaction, which
    # a slow fixture setup can put seconds before the app server's clock).
    Grant.objects.filter(pk=grant.pk).update(expires_at=db_now() + delta)


def test_due_grant_expires_once_and_loses_its_permissions(active_grant, lead):
    assert "query_grant" in object_perms(lead, active_grant)
    _move_expiry(active_grant, timedelta(seconds=-1))
    assert grants_expire_due() == 1
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.EXPIRED and active_grant.expired_at is not None
    assert object_perms(lead, active_grant) == set()
    assert grants_expire_due() == 0  # a second run (or a second beat) changes nothing
    assert AuditEvent.objects.filter(action="grant.expired", target_id=str(active_grant.pk)).count() == 1


def test_grant_not_yet_due_is_left_alone(active_grant):
    assert grants_expire_due() == 0
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.ACTIVE


def test_expiry_works_in_bounded_batches(active_grant):
    _move_expiry(active_grant, timedelta(seconds=-1))
    assert grants_expire_due(batch_size=1) == 1


def test_expired_grant_is_refused_even_before_the_sweep(active_grant, lead):
    _move_expiry(active_grant, timedelta(seconds=-1))
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.ACTIVE  # nothing ran
    assert not active_grant.is_usable_by(lead)
    assert not Grant.objects.usable_by(lead).filter(pk=active_grant.pk).exists()


def test_warnings_go_once_per_threshold(active_grant, lead):
    _move_expiry(active_grant, timedelta(hours=20))
    sent = grants_warn_expiring()
    assert sent == 1
    assert grants_warn_expiring() == 0
    _move_expiry(active_grant, timedelta(minutes=30))
    assert grants_warn_expiring() == 1
    assert grants_warn_expiring() == 0


def test_warning_email_reaches_the_grantee(active_grant, lead, django_capture_on_commit_callbacks, deliver_mail):
    _move_expiry(active_grant, timedelta(hours=2))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        grants_warn_expiring()
    [message] = [m for m in deliver_mail() if "ends within" in m.subject]
    assert message.to == [lead.email]
    assert active_grant.case.reference in message.subject


def test_beat_schedule_lists_every_periodic_task():
    from django.conf import settings

    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    # SQLite chains at once and has no partitions
    sealing = (
        {"audit.tasks.seal_audit_events", "audit.tasks.create_audit_partitions"}
        if connection.vendor == "postgresql"
        else set()
    )
    assert tasks_scheduled - sealing == {
        "investigations.expire_grants",
        "investigations.scan_oversight",
        "investigations.requeue_stale_queries",
        "investigations.expire_pending_requests",
        "investigations.warn_expiring_grants",
        "investigations.purge_expired_results",
        "audit.tasks.seal_audit_checkpoint",
        "audit.tasks.verify_audit_chain",
        "audit.tasks.verify_audit_chain_complete",
        "audit.tasks.dispatch_streams",
        "investigations.verify_evidence",
        "investigations.purge_closed_evidence",
        "investigations.deliver_mail",
    }
    assert sealing <= tasks_scheduled


def test_expire_task_calls_the_action(active_grant):
    _move_expiry(active_grant, timedelta(seconds=-1))
    assert tasks.expire_grants.run() == 1
