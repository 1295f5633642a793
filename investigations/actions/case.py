from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

import audit
from accounts.models import User
from audit.actions import Action

from ..access import LEAD_PERMS, MEMBER_PERMS, can_review_case
from ..errors import InvalidTransition
from ..models import Case, CaseMember, CaseReferenceCounter, CaseStatus


def _next_reference() -> str:
    """``INV-<year>-<number>``: numbers are handed out under a row lock and never reused."""
    year = timezone.now().year
    CaseReferenceCounter.objects.get_or_create(year=year)
    counter = CaseReferenceCounter.objects.select_for_update().get(year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return f"INV-{year}-{counter.last_number:04d}"


def _grant_case_perms(*, actor: User | None, case: Case, user: User, perms: tuple[str, ...]) -> None:
    for codename in perms:
        assign_perm(codename, user, case)
    audit.record(
        action=Action.PERMISSION_GRANTED,
        actor=actor,
        target=case,
        case_reference=case.reference,
        details={"user": user.username, "user_id": user.pk, "permissions": list(perms)},
    )


def _check_member_candidate(user: User, *, field: str) -> None:
    if not user.is_active:
        raise ValidationError({field: f"{user.username} is deactivated and cannot join a case team."})
    if not user.is_investigator:
        raise ValidationError({field: f"{user.username} is not an investigator; only investigators join case teams."})


def case_open(*, actor: User, title: str, allegation: str, case_type: str, purpose: str, team: list[User] = ()) -> Case:
    """Open a case led by ``actor``. It waits for a legal reviewer's approval before any request."""
    if not actor.is_active or not actor.is_investigator:
        raise PermissionDenied("Only investigators open cases.")
    for member in team:
        _check_member_candidate(member, field="team")
    case = Case(title=title, allegation=allegation, case_type=case_type, purpose=purpose, lead=actor)
    case.reference = "INV-0000-0000"  # placeholder for validation; the real one is taken below
    case.full_clean(exclude=["reference"])
    with transaction.atomic():
        case.reference = _next_reference()
        case.save()
        audit.record(
            action=Action.CASE_OPENED,
            actor=actor,
            target=case,
            case_reference=case.reference,
            details={"title": title, "case_type": case_type},
        )
        CaseMember.objects.create(case=case, user=actor, is_lead=True, added_by=actor)
        _grant_case_perms(actor=actor, case=case, user=actor, perms=LEAD_PERMS)
        for member in team:
            if member.pk != actor.pk:
                _add_member(actor=actor, case=case, user=member)
    return case


def _add_member(*, actor: User, case: Case, user: User) -> None:
    CaseMember.objects.create(case=case, user=user, added_by=actor)
    audit.record(
        action=Action.CASE_MEMBER_ADDED,
        actor=actor,
        target=case,
        case_reference=case.reference,
        details={"user": user.username, "user_id": user.pk},
    )
    _grant_case_perms(actor=actor, case=case, user=user, perms=MEMBER_PERMS)


def case_add_member(*, actor: User, case: Case, user: User) -> None:
    """Add an investigator to the team (view, notes, file requests). Caller checked ``manage_team``."""
    _check_member_candidate(user, field="user")
    if case.is_closed:
        raise InvalidTransition("A closed case's team cannot change.")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if CaseMember.objects.filter(case=case, user=user).exists():
            raise ValidationError({"user": f"{user.username} is already on the team."})
        _add_member(actor=actor, case=case, user=user)


def case_approve(*, actor: User, case: Case) -> Case:
    """A legal reviewer not on the team approves a pending case: it opens for requests."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if not can_review_case(actor, case):
            raise PermissionDenied("Only a legal reviewer who is not on the case team may approve it.")
        if case.status != CaseStatus.PENDING_APPROVAL:
            raise InvalidTransition(f"The case is {case.get_status_display().lower()}, not pending approval.")
        case.status = CaseStatus.OPEN
        case.decided_by = actor
        case.decided_at = timezone.now()
        case.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
        audit.record(action=Action.CASE_APPROVED, actor=actor, target=case, case_reference=case.reference)
    return case
