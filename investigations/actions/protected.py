"""The protected-subject registry (managed by administrators through the admin)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import audit
from accounts.models import User
from audit.actions import Action

from ..models import ProtectedSubject


def _check_admin(actor: User) -> None:
    if not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Only administrators manage the protected-subject registry.")


def protected_subject_add(*, actor: User, account_id: int, category: str, note: str = "") -> ProtectedSubject:
    """Put an account on the registry: requests naming it then need two approvals, one senior."""
    _check_admin(actor)
    subject = ProtectedSubject(account_id=account_id, category=category, note=note, added_by=actor)
    subject.full_clean()
    with transaction.atomic():
        subject.save()
        audit.record(
            action=Action.PROTECTED_SUBJECT_ADDED,
            actor=actor,
            target=subject,
            details={"account_id": account_id, "category": category},
        )
    return subject


def protected_subject_remove(*, actor: User, subject: ProtectedSubject, reason: str = "") -> None:
    """Take an account off the registry. Requests already submitted keep their two-approval rule."""
    _check_admin(actor)
    if not ProtectedSubject.objects.filter(pk=subject.pk).exists():
        raise ValidationError("This account is not on the registry.")
    with transaction.atomic():
        audit.record(
            action=Action.PROTECTED_SUBJECT_REMOVED,
            actor=actor,
            target=subject,
            details={"account_id": subject.account_id, "category": subject.category, "reason": reason},
        )
        subject.delete()
