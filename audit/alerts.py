"""Tell auditors when the ledger fails verification (email and a ledger event)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

from .access import AUDITOR_GROUP
from .events import Action
from .ledger import record
from .verification import Verification

logger = logging.getLogger(__name__)


def auditor_emails() -> list[str]:
    users = get_user_model().objects.filter(groups__name=AUDITOR_GROUP, is_active=True).exclude(email="")
    return sorted({*users.values_list("email", flat=True), *settings.OVERSIGHT_EMAILS})


def alert_verification_failed(result: Verification, *, actor=None, details: dict | None = None) -> None:
    """Email the auditors first (works even if the ledger refuses writes), then record it."""
    recipients = auditor_emails()
    if recipients:
        send_mail(
            subject=f"[Custos] Audit chain verification FAILED at seq {result.bad_seq}",
            message=(
                f"The audit ledger failed verification.\n\n{result.summary()}\n\n"
                f"Events verified before the failure: {result.count}.\n"
                "Treat the audit trail as possibly tampered with until this is explained."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
    else:
        logger.error("audit verification failed and no auditor has an email address: %s", result.summary())
    try:
        with transaction.atomic():
            record(action=Action.AUDIT_VERIFY_FAILED, actor=actor, details=details or result.as_json())
    except Exception:
        logger.exception("could not record the failed verification in the ledger")
