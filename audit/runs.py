"""Verifications that leave a trace: from the command line, the schedule or the "Verify now" button.

Every run ends as a ledger event (``audit.verified`` or ``audit.verify_failed``, with who ran it
and from where), which is what the verification page and the auditor's start page read. A
failure also alerts the auditors.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import sealer
from .alerts import alert_verification_failed
from .events import Action
from .ledger import record
from .models import AuditEvent, ChainHead, VerificationRun, VerificationRunStatus
from .verification import Verification, verify

logger = logging.getLogger(__name__)

# The worker's task for a run, sent by name: ``tasks`` imports this module, nothing imports back.
VERIFY_RUN_TASK = "audit.tasks.verify_audit_run"

SOURCES = {"command": "command line", "schedule": "daily schedule", "page": "Verify now", "api": "API"}


def last_anchored_head() -> int | None:
    """The head of the newest successful verification that reached back to a trusted start.

    That is one from the first event, or an incremental one that started after a signed
    checkpoint (``details.anchored``; runs recorded before incremental runs existed say
    ``from_seq`` 1 instead). None if there is none.
    """
    verified = AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED, details__ok=True)
    anchored = verified.filter(Q(details__anchored=True) | Q(details__from_seq=1) & ~Q(details__has_key="anchored"))
    details = anchored.order_by("-seq").values_list("details", flat=True).first()
    return int(details["head_seq"]) if details else None


def verify_and_record(
    *, actor=None, source: str, run: VerificationRun | None = None, incremental: bool = False, **options
) -> Verification:
    """Verify the chain (``options`` go to ``verify``) and record the outcome on the ledger.

    ``incremental``: from the newest signed checkpoint the last anchored verification covered
    to the head (``verify(resume_after=...)``), so a daily run costs what was added that day;
    the whole chain when there is no such verification or checkpoint yet.

    A failure is recorded by ``alert_verification_failed`` (auditors are e-mailed first, so a
    ledger that refuses writes still raises the alarm); a success here, in its own transaction.
    """
    sealer.seal_first()  # what has committed is chained first, so the run covers it
    if incremental:
        options["resume_after"] = last_anchored_head()
    result = verify(**options)
    details = {**result.as_json(), "source": SOURCES[source]}
    if run is not None:
        details["run"] = run.pk
    if result.ok:
        try:
            with transaction.atomic():
                record(action=Action.AUDIT_VERIFIED, actor=actor, details=details)
        except Exception:  # e.g. a verifier's read-only role: the outcome still stands and is shown
            logger.exception("could not record the verification in the ledger: %s", result.summary())
    else:
        alert_verification_failed(result, actor=actor, details=details)
    return result


def last_outcome() -> AuditEvent | None:
    """The ledger event of the latest verification, wherever it ran."""
    return (
        AuditEvent.objects.filter(action__in=[Action.AUDIT_VERIFIED, Action.AUDIT_VERIFY_FAILED])
        .order_by("-seq")
        .first()
    )


def current_run() -> VerificationRun | None:
    """The verification queued or under way, if any (one at a time)."""
    return VerificationRun.objects.exclude(status=VerificationRunStatus.DONE).first()


def run_start(*, actor, source: str = "page") -> VerificationRun:
    """Queue a verification for ``actor`` (an auditor; the caller checked) and ring the worker
    after commit. ``source``: ``page`` (Verify now) or ``api``."""
    with transaction.atomic():
        head = ChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
        run = VerificationRun.objects.create(requested_by=actor.get_username(), total=head)
        transaction.on_commit(lambda: current_app.send_task(VERIFY_RUN_TASK, args=[run.pk, source]))
    return run


def run_execute(run_id: int, source: str = "page") -> VerificationRun | None:
    """Claim a queued run (a conditional UPDATE: a second delivery finds nothing), verify with
    progress written to the row, record the outcome; None if it is gone or someone has it."""
    claimed = VerificationRun.objects.filter(pk=run_id, status=VerificationRunStatus.QUEUED).update(
        status=VerificationRunStatus.RUNNING
    )
    if not claimed:
        return None
    run = VerificationRun.objects.get(pk=run_id)
    actor = _actor(run.requested_by)

    def progress(checked: int, total: int) -> None:
        VerificationRun.objects.filter(pk=run_id).update(checked=checked, total=total)

    result = verify_and_record(actor=actor, source=source, run=run, on_progress=progress)
    last = AuditEvent.objects.filter(action__in=[Action.AUDIT_VERIFIED, Action.AUDIT_VERIFY_FAILED])
    VerificationRun.objects.filter(pk=run_id).update(
        status=VerificationRunStatus.DONE,
        checked=result.count,
        finished_at=timezone.now(),
        ok=result.ok,
        summary=result.summary()[:500],
        event_seq=last.filter(details__run=run_id).values_list("seq", flat=True).first(),
    )
    run.refresh_from_db()
    return run


def _actor(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username).first()
