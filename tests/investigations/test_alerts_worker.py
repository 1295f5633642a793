"""Oversight on real services: a real worker runs the scan after commit; concurrent scans never double-alert."""

from __future__ import annotations

import threading
import time

import pytest

from audit.events import Action
from audit.models import AuditEvent
from custos_testing.worker import wait_for
from investigations import actions, enqueue
from investigations.actions import oversight
from investigations.errors import QueryDenied
from investigations.models import Alert, AlertKind, GrantReport, OversightCursor

from .fixtures import file_request

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]



@pytest.mark.worker
def test_worker_raises_and_emails_the_alert_and_writes_the_report(
    celery_worker_process, auditor, admin_user, open_case, lead, reviewer, second_reviewer, store
):
    actions.protected_subject_add(actor=admin_user, account_id=1, category="journalist")
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead, legal_basis="legal_process"))
    # Nobody calls the scan here: request_submit enqueued it on commit and the worker runs it.
    alert = wait_for(
        lambda: Alert.objects.filter(kind=AlertKind.PROTECTED_REQUEST_SUBMITTED, request=request).first(),
        "the protected-request alert",
        celery_worker_process,
    )
    wait_for(
        lambda: Alert.objects.filter(pk=alert.pk, emailed_at__isnull=False).exists(),
        "the oversight email",
        celery_worker_process,
    )
    assert AuditEvent.objects.filter(action=Action.ALERT_RAISED, target_id=str(alert.pk)).count() == 1

    plain = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("5",)))
    actions.request_decide(actor=second_reviewer, request=plain, outcome="approve")
    plain.refresh_from_db()
    actions.grant_revoke(actor=reviewer, grant=plain.grant, reason="No longer needed.")
    report = wait_for(
        lambda: GrantReport.objects.filter(grant=plain.grant).first(), "the scope-diff report", celery_worker_process
    )
    assert report.unused_subjects == [5] and report.unused_categories == ["ip_logs", "profile"]
    assert Alert.objects.filter(kind=AlertKind.PROTECTED_REQUEST_SUBMITTED).count() == 1


@pytest.mark.worker
def test_every_alert_of_a_burst_arrives_though_the_doorbell_rang_once(
    celery_worker_process, admin_user, open_case, lead, store, monkeypatch, settings
):
    # A window far longer than the burst takes, so the rings left out are certain; the rung
    # scan runs again after it, and that second run is what finds the later submissions.
    settings.CUSTOS = {**settings.CUSTOS, "OVERSIGHT": {**settings.CUSTOS["OVERSIGHT"], "DOORBELL_MS": 5000}}
    actions.protected_subject_add(actor=admin_user, account_id=1, category="journalist")
    rings: list[str] = []
    send = enqueue.send

    def counted(task, *args, **options):
        rings.append(task)
        send(task, *args, **options)

    monkeypatch.setattr(enqueue, "send", counted)
    requests = [
        actions.request_submit(actor=lead, request=file_request(open_case, lead, legal_basis="legal_process"))
        for _ in range(4)
    ]
    wait_for(
        lambda: Alert.objects.filter(kind=AlertKind.PROTECTED_REQUEST_SUBMITTED, request__in=requests).count() == 4,
        "the four protected-request alerts",
        celery_worker_process,
    )
    # The oversight doorbell rang once for the burst (the submissions' notices ring the mail
    # worker's doorbell, which has a window of its own).
    assert [task for task in rings if task != enqueue.DELIVER_MAIL] == [enqueue.SCAN_OVERSIGHT]


@pytest.mark.postgres
def test_concurrent_scans_raise_each_alert_once(active_grant, protected_request, lead, monkeypatch, settings):
    always = {"WORKING_DAYS": tuple(range(7)), "WORKING_HOURS": ("00:00", "23:59:59.999999")}
    settings.CUSTOS = {**settings.CUSTOS, "OVERSIGHT": {**settings.CUSTOS["OVERSIGHT"], **always}}
    for _ in range(4):
        with pytest.raises(QueryDenied):
            actions.query_submit(actor=lead, grant=active_grant, category="location")
    process = oversight._process

    def slow_process(*args):
        time.sleep(0.02)  # keep the first scan inside its lock while the second arrives
        process(*args)

    monkeypatch.setattr(oversight, "_process", slow_process)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def scan() -> None:
        from django.db import connection

        try:
            barrier.wait(timeout=30)
            oversight.alerts_scan()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    kinds = sorted(Alert.objects.values_list("kind", flat=True))
    assert kinds == [AlertKind.PROTECTED_REQUEST_SUBMITTED, AlertKind.REPEATED_DENIALS]
    assert AuditEvent.objects.filter(action=Action.ALERT_RAISED).count() == 2
    # The scans' own alert.raised events are read once sealed: by the next scan, which seals first.
    oversight.alerts_scan()
    assert Alert.objects.count() == 2
    assert OversightCursor.objects.get().last_seq == AuditEvent.objects.order_by("-seq")[0].seq
