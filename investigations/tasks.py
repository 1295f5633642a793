"""Celery tasks: thin doorbells that re-fetch from the database and call an action.

JSON arguments only; ``acks_late`` and reject-on-worker-lost come from settings. A lost
message loses nothing: the sweeper re-derives pending work from the database.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import enqueue, notify
from .actions import evidence as evidence_actions
from .actions import lapse_overdue_requests, lifecycle, oversight, retention
from .actions import query as query_actions

# Retries wait 2, 4, 8, 16, 32 s. No jitter: Celery's "full jitter" draws the wait from
# 0..backoff, so a retry could fire at once ("Retry in 0s") and spend the retries within
# milliseconds of a database blip. The beat schedule already spreads the periodic tasks.
RETRY = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": False,
    "max_retries": 5,
}


@shared_task(bind=True, name=enqueue.RUN_QUERY, **RETRY)
def run_query(self, query_id: int, takeover: int | None = None) -> str | None:
    """Run one query; returns quietly if it is gone or done.

    A redelivered message means the worker running it died: the query is noted as retrying
    before it runs again. A query another run holds right now is asked about again in 2 s
    (that run commits, or dies and releases it). ``takeover`` is accepted and ignored: messages
    of older releases carry it.
    """
    if (self.request.delivery_info or {}).get("redelivered"):
        query_actions.query_note_retry(query_id=query_id)
    try:
        query = query_actions.query_run(query_id=query_id)
    except query_actions.RunInProgress as held:
        raise self.retry(countdown=2, exc=held) from held
    return query.status if query is not None else None


@shared_task(name="investigations.requeue_stale_queries", **RETRY)
def requeue_stale_queries() -> dict:
    return {"queued": query_actions.requeue_stale_queries().queued}


@shared_task(name="investigations.purge_expired_results", **RETRY)
def purge_expired_results() -> int:
    return query_actions.purge_expired_results()


@shared_task(name="investigations.expire_grants", **RETRY)
def expire_grants() -> int:
    """Mark due grants expired (hygiene: the gateway already refuses them by the database clock)."""
    return lifecycle.grants_expire_due()


@shared_task(name="investigations.warn_expiring_grants", **RETRY)
def warn_expiring_grants() -> int:
    return lifecycle.grants_warn_expiring()


@shared_task(name="investigations.expire_pending_requests", **RETRY)
def expire_pending_requests() -> int:
    return lapse_overdue_requests()


@shared_task(name=enqueue.SCAN_OVERSIGHT, **RETRY)
def scan_oversight(quiet_ms: int = 0) -> dict:
    """Raise oversight alerts and write grant reports from new audit events (safe to overlap).

    Rung by a doorbell (``enqueue.ring``), it also runs once more ``quiet_ms`` from now, for the
    events whose rings the doorbell's quiet window left out; the beat schedule sends no argument.
    """
    if quiet_ms:
        enqueue.ring_again(enqueue.SCAN_OVERSIGHT, quiet_ms)
    scan = oversight.alerts_scan()
    return {"events": scan.events, "alerts": len(scan.alerts), "reports": len(scan.reports), "seq": scan.last_seq}


@shared_task(name=enqueue.DELIVER_MAIL, **RETRY)
def deliver_mail(quiet_ms: int = 0) -> dict:
    """Send the queued e-mails that are due (beat: every minute).

    Rung by a doorbell after the commit that queued them (``notify.ring_delivery``), it also runs
    once more ``quiet_ms`` from now, for the mails whose rings the quiet window left out; the beat
    schedule sends no argument.
    """
    if quiet_ms:
        enqueue.ring_again(enqueue.DELIVER_MAIL, quiet_ms)
    done = notify.deliver_due()
    return {"sent": done.sent, "retrying": done.retrying, "failed": done.failed}


@shared_task(name="investigations.purge_closed_evidence", **RETRY)
def purge_closed_evidence() -> int:
    """Purge the evidence files of cases closed past retention and not under legal hold (records stay)."""
    return retention.evidence_purge_due()


@shared_task(name="investigations.verify_evidence", **RETRY)
def verify_evidence() -> dict:
    """Re-hash stored evidence in batches; a changed or missing file alerts oversight."""
    run = evidence_actions.evidence_verify_due()
    return {"checked": run.checked, "failed": run.failed}
