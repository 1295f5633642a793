"""The protected-subject registry: add, change, remove; each change audited.

Administrators (staff, through the admin) and senior legal reviewers (through their registry
page) manage it. A change never loosens a request already submitted: protection found at
submission is kept until the request is decided.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import User
from audit.actions import Action

from ..access import may_manage_registry
from ..models import ProtectedCategory, ProtectedSubject

REGISTRY_FIELDS = ("category", "source", "note")


def _check_manager(actor: User) -> None:
    if not may_manage_registry(actor):
        raise PermissionDenied("Only administrators and senior legal reviewers manage the protected-subject registry.")


def _entry(subject: ProtectedSubject) -> dict:
    return {"account_id": subject.account_id, **{name: getattr(subject, name) for name in REGISTRY_FIELDS}}


def _clean(subject: ProtectedSubject, *, exclude: tuple[str, ...] = ()) -> None:
    errors: dict[str, list[str]] = {}
    if subject.category not in ProtectedCategory.values:
        errors["category"] = ["Choose one of the registry categories."]
    try:
        subject.full_clean(exclude=["added_by", "changed_by", *exclude])
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            errors.setdefault(name, []).extend(message for message in messages if message not in errors.get(name, []))
    if "account_id" not in exclude and "account_id" not in errors and not 0 < int(subject.account_id) < 2**63:
        errors["account_id"] = ["An account id is a positive whole number."]
    if errors:
        raise ValidationError(errors)


def _reason(reason: str, what: str) -> str:
    if not reason.strip():
        raise ValidationError({"reason": f"Give the reason for {what} (it goes into the audit trail)."})
    return reason.strip()


def protected_subject_add(
    *, actor: User, account_id: int, category: str, note: str = "", source: str = ""
) -> ProtectedSubject:
    """Put an account on the registry: requests touching it then need the protected policy."""
    _check_manager(actor)
    subject = ProtectedSubject(account_id=account_id, category=category, note=note, source=source, added_by=actor)
    _clean(subject)
    with transaction.atomic():
        subject.save()
        audit.record(
            action=Action.PROTECTED_SUBJECT_ADDED,
            actor=actor,
            target=subject,
            details={"account_id": subject.account_id, "category": category, "source": source},
        )
    return subject


def protected_subject_change(
    *, actor: User, subject: ProtectedSubject, category: str, note: str, source: str, reason: str
) -> ProtectedSubject:
    """Change an entry's category, source or note (never its account: remove and add for that)."""
    _check_manager(actor)
    reason = _reason(reason, "the change")
    with transaction.atomic():
        current = ProtectedSubject.objects.select_for_update().filter(pk=subject.pk).first()
        if current is None:
            raise ValidationError("This account is no longer on the registry.")
        before = _entry(current)
        current.category, current.note, current.source = category, note, source
        _clean(current, exclude=("account_id",))
        if _entry(current) == before:
            raise ValidationError("Nothing was changed.")
        current.changed_by, current.changed_at = actor, timezone.now()
        current.save(update_fields=[*REGISTRY_FIELDS, "changed_by", "changed_at"])
        audit.record(
            action=Action.PROTECTED_SUBJECT_CHANGED,
            actor=actor,
            target=current,
            details={"account_id": current.account_id, "before": before, "after": _entry(current), "reason": reason},
        )
    return current


def protected_subject_remove(*, actor: User, subject: ProtectedSubject, reason: str) -> None:
    """Take an account off the registry. Requests already submitted keep the protected policy."""
    _check_manager(actor)
    reason = _reason(reason, "removing the account from the registry")
    with transaction.atomic():
        current = ProtectedSubject.objects.select_for_update().filter(pk=subject.pk).first()
        if current is None:
            raise ValidationError("This account is not on the registry.")
        audit.record(
            action=Action.PROTECTED_SUBJECT_REMOVED,
            actor=actor,
            target=current,
            details={**_entry(current), "reason": reason},
        )
        current.delete()
