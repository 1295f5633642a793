"""Grants: issuing one when a request's approvals are complete (``request_decide`` calls
``issue_grant`` in its transaction), revoking, and taking a user off the grants they hold."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

import audit
from accounts.models import User
from audit.events import Action

from ..access import can_revoke
from ..errors import InvalidTransition
from ..models import Case, DataPullRequest, Decision, Grant, GrantStatus, RequestStatus
from ..models.grant import db_now
from ..scope import Scope
from . import membership, oversight
from .locks import locked, retry_on_conflict

GRANTEE_PERMS = ("view_grant", "query_grant")


# --- issuing -------------------------------------------------------------------------------


def _intersect(approvals: list[Decision]) -> Scope:
    """With several approvals, the grant gets what every approver approved."""
    subjects = [s for s in approvals[0].subjects if all(s in d.subjects for d in approvals)]
    categories = [c for c in approvals[0].categories if all(c in d.categories for d in approvals)]
    return Scope(
        subjects=tuple(subjects),
        categories=tuple(categories),
        window_start=max(d.window_start for d in approvals),
        window_end=min(d.window_end for d in approvals),
        duration_hours=min(d.duration_hours for d in approvals),
    )


def issue_grant(*, actor: User, request: DataPullRequest, approvals: list[Decision], grantees) -> Grant:
    """Create the grant with a frozen copy of the approved scope, in the deciding transaction."""
    scope = _intersect(approvals)
    if not scope.subjects or not scope.categories or scope.window_start > scope.window_end:
        raise ValidationError({"outcome": "The approvals leave nothing in common; narrow it consistently or reject."})
    starts_at = db_now()
    grant = Grant.objects.create(
        request=request,
        case=request.case,
        subjects=list(scope.subjects),
        categories=list(scope.categories),
        window_start=scope.window_start,
        window_end=scope.window_end,
        starts_at=starts_at,
        expires_at=starts_at + timedelta(hours=scope.duration_hours),
    )
    grant.grantees.set(grantees)
    membership.grantees_joined(grant=grant, users=grantees)
    request.status = RequestStatus.APPROVED
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at", "updated_at"])
    audit.record(
        action=Action.GRANT_ISSUED,
        actor=actor,
        target=grant,
        case_reference=request.case.reference,
        details={
            "request": request.pk,
            "scope": scope.as_record(),
            "grantees": sorted(user.username for user in grantees),
            "expires_at": grant.expires_at.isoformat(),
        },
    )
    _grant_perms_to(grant, grantees)
    return grant


def _grant_perms_to(grant: Grant, grantees) -> None:
    """``view_grant`` and ``query_grant`` on the new ``grant`` for each grantee: guardian's bulk
    assignment (``assign_perm`` with a list: the permission, then one INSERT for every grantee),
    two statements per permission whatever their number, not a get-or-create per grantee."""
    grantees = list(grantees)
    for codename in GRANTEE_PERMS:
        assign_perm(codename, grantees, grant)


# --- revoking ----------------------------------------------------------------------------


@retry_on_conflict
def grant_revoke(*, actor: User, grant: Grant, reason: str) -> Grant:
    """Revoke a grant now (the approving reviewer, any legal reviewer or the case lead).

    It stops working at once, whatever the expiry task does.
    """
    if not can_revoke(actor, grant):
        raise PermissionDenied("Only a legal reviewer or the case lead may revoke the grant.")
    return revoke_grant_unchecked(actor=actor, grant=grant, reason=reason)


def revoke_grant_unchecked(*, actor: User | None, grant: Grant, reason: str) -> Grant:
    """Revoke without asking who the actor is: for closing a case and deactivating a user."""
    if not reason.strip():
        raise ValidationError({"reason": "Give the reason for revoking the grant."})
    with transaction.atomic():
        grant = locked(Grant.objects).select_related("case").get(pk=grant.pk)
        if grant.status != GrantStatus.ACTIVE:
            raise InvalidTransition(f"The grant is already {grant.get_status_display().lower()}.")
        grant.status = GrantStatus.REVOKED
        grant.revoked_at = db_now()
        grant.revoked_by = actor
        grant.revoke_reason = reason
        grant.save(update_fields=["status", "revoked_at", "revoked_by", "revoke_reason"])
        for user in grant.grantees.all():
            for codename in GRANTEE_PERMS:
                remove_perm(codename, user, grant)
        audit.record(
            action=Action.GRANT_REVOKED,
            actor=actor,
            target=grant,
            case_reference=grant.case.reference,
            details={"reason": reason},
        )
        oversight.scan_soon()  # the scope-diff report
    return grant


def grants_leave(*, actor: User | None, user: User, grants, reason: str) -> tuple[list[int], list[int]]:
    """Take ``user`` off the active grants among ``grants``: a grant they held alone is revoked,
    on a shared one they stop being a grantee. Returns (revoked ids, left ids).

    Used when a member leaves a case team and when a user is deactivated.
    """
    revoked, left = [], []
    held = locked(grants).filter(status=GrantStatus.ACTIVE, grantees=user).select_related("case")
    for grant in held.order_by("pk"):
        membership.grantee_left(grant=grant, user=user)
        if not grant.grantees.exclude(pk=user.pk).exists():
            revoke_grant_unchecked(actor=actor, grant=grant, reason=reason)
            revoked.append(grant.pk)
            continue
        grant.grantees.remove(user)
        for codename in GRANTEE_PERMS:
            remove_perm(codename, user, grant)
        audit.record(
            action=Action.PERMISSION_REMOVED,
            actor=actor,
            target=grant,
            case_reference=grant.case.reference,
            details={"user": user.username, "user_id": user.pk, "permissions": list(GRANTEE_PERMS), "reason": reason},
        )
        left.append(grant.pk)
    return revoked, left


def case_revoke_grants(*, actor: User | None, case: Case, reason: str) -> list[int]:
    """Revoke every active grant on ``case``; the ids revoked. ``case_close`` calls this in its
    transaction, after locking the case (the lock order: case, then its grants)."""
    revoked = []
    with transaction.atomic():
        for grant in locked(Grant.objects).filter(case=case, status=GrantStatus.ACTIVE).order_by("pk"):
            revoke_grant_unchecked(actor=actor, grant=grant, reason=reason)
            revoked.append(grant.pk)
    return revoked
