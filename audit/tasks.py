"""Celery tasks of the ledger. Thin: no arguments, JSON results, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from . import checkpoints
from .actions import Action
from .alerts import alert_verification_failed
from .ledger import record
from .verification import verify


@shared_task
def seal_audit_checkpoint() -> dict:
    """Hourly: sign the chain head into AUDIT_CHECKPOINT_DIR and record the checkpoint."""
    checkpoint = checkpoints.seal()
    return {"seq": checkpoint.seq, "head": checkpoint.head}


@shared_task
def verify_audit_chain() -> dict:
    """Daily: verify the whole chain against every signed checkpoint; alert auditors on failure."""
    result = verify()
    if result.ok:
        with transaction.atomic():
            record(action=Action.AUDIT_VERIFIED, details=result.as_json())
    else:
        alert_verification_failed(result)
    return result.as_json()
