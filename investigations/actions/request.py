from __future__ import annotations

from datetime import date, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

import audit
from accounts.models import User
from audit.actions import Action

from ..access import object_perms
from ..errors import InvalidTransition
from ..gateway import resolve_subjects
from ..models import (
    Case,
    CaseStatus,
    DataPullRequest,
    Decision,
    DecisionOutcome,
    Grant,
    GrantStatus,
    ProtectedSubject,
    RequestStatus,
)
from ..models.grant import db_now
from ..scope import Scope, check_narrowing, check_scope, limits

GRANTEE_PERMS = ("view_grant", "query_grant")


def _scope_of(request: DataPullRequest) -> Scope:
    return Scope(
        subjects=tuple(request.subjects),
        categories=tuple(request.categories),
        window_start=request.window_start,
        window_end=request.window_end,
        duration_hours=request.duration_hours,
    )


def _resolve(*, actor: User, case: Case, identifiers: list[str]) -> tuple[list[int], list[dict]]:
    if len(identifiers) > limits()["MAX_SUBJECTS"]:
        raise ValidationError({"subjects": f"At most {limits()['MAX_SUBJECTS']} subjects per request."})
    if not [identifier for identifier in identifiers if identifier.strip()]:
        raise ValidationError({"subjects": "Name at least one subject."})
    resolution = resolve_subjects(actor=actor, identifiers=identifiers, case_reference=case.reference)
    if resolution.unknown:
        raise ValidationError(
            {"subjects": f"No account matches: {', '.join(resolution.unknown)}. Check the id or handle."}
        )
    return resolution.accounts, resolution.found


def _check_justification(justification: str, legal_basis: str, legal_basis_other: str) -> None:
    errors = {}
    if len(justification.strip()) < limits()["MIN_JUSTIFICATION"]:
        errors["justification"] = (
            f"Explain why this data is needed (at least {limits()['MIN_JUSTIFICATION']} characters)."
        )
    if legal_basis == "other" and not legal_basis_other.strip():
        errors["legal_basis_other"] = "Describe the legal basis."
    if errors:
        raise ValidationError(errors)


def request_create(
    *,
    actor: User,
    case: Case,
    subjects: list[str],
    categories: list[str],
    window_start: date,
    window_end: date,
    justification: str,
    legal_basis: str,
    duration_hours: int,
    legal_basis_other: str = "",
) -> DataPullRequest:
    """File a draft request on a case. The caller checked ``file_request`` on the case.

    Subjects are typed identifiers; they are resolved to accounts through the gateway's
    audited lookup, and an identifier that matches no account is a field error.
    """
    if "file_request" not in object_perms(actor, case):
        raise PermissionDenied("Only the case team may file data-pull requests.")
    if case.is_closed:
        raise InvalidTransition("The case is closed.")
    _check_justification(justification, legal_basis, legal_basis_other)
    request = DataPullRequest(
        case=case,
        requested_by=actor,
        categories=list(categories),
        window_start=window_start,
        window_end=window_end,
        justification=justification,
        legal_basis=legal_basis,
        legal_basis_other=legal_basis_other,
        duration_hours=duration_hours,
        subjects=[],
    )
    request.full_clean(exclude=["subjects", "subject_inputs"])
    with transaction.atomic():
        request.subjects, request.subject_inputs = _resolve(actor=actor, case=case, identifiers=subjects)
        check_scope(_scope_of(request))
        request.save()
        audit.record(
            action=Action.REQUEST_CREATED,
            actor=actor,
            target=request,
            case_reference=case.reference,
            details={"scope": request.scope(), "legal_basis": legal_basis},
        )
    return request


def _protected_categories(subjects: list[int]) -> list[str]:
    return sorted(set(ProtectedSubject.objects.filter(account_id__in=subjects).values_list("category", flat=True)))


def request_submit(*, actor: User, request: DataPullRequest) -> DataPullRequest:
    """Send a draft (or returned) request to legal. Only on an open case."""
    with transaction.atomic():
        request = DataPullRequest.objects.select_for_update().select_related("case").get(pk=request.pk)
        if actor.pk != request.requested_by_id:
            raise PermissionDenied("Only the requester may submit the request.")
        if request.status not in (RequestStatus.DRAFT, RequestStatus.RETURNED):
            raise InvalidTransition(f"The request is {request.get_status_display().lower()}; it cannot be submitted.")
        if request.case.status != CaseStatus.OPEN:
            raise InvalidTransition("Requests can be submitted only on a case that legal has approved and is open.")
        check_scope(_scope_of(request))
        request.protected_categories = _protected_categories(request.subjects)
        request.is_protected = bool(request.protected_categories)
        request.status = RequestStatus.SUBMITTED
        request.review_round += 1
        request.submitted_at = timezone.now()
        request.save(
            update_fields=[
                "status",
                "review_round",
                "submitted_at",
                "is_protected",
                "protected_categories",
                "updated_at",
            ]
        )
        audit.record(
            action=Action.REQUEST_SUBMITTED,
            actor=actor,
            target=request,
            case_reference=request.case.reference,
            details={"scope": request.scope(), "protected": request.protected_categories},
        )
    return request


def independence_problem(user: User, request: DataPullRequest) -> str | None:
    """Why ``user`` may not decide ``request``, or None. Enforced in the action, shown by pages."""
    if not user.is_active or not user.is_reviewer:
        return "Only legal reviewers decide data-pull requests."
    if user.pk == request.requested_by_id:
        return "You filed this request; someone independent must decide it."
    if request.case.is_on_team(user):
        return "You are on this case's team; someone independent must decide it."
    if Grant.objects.filter(case=request.case, grantees=user).exists():
        return "You hold a grant on this case; someone independent must decide it."
    return None


def approvals_needed(request: DataPullRequest) -> tuple[int, bool]:
    """(approvals required, whether one must be senior)."""
    return (2, True) if request.is_protected else (1, False)


def request_decide(
    *,
    actor: User,
    request: DataPullRequest,
    outcome: str,
    reason: str = "",
    scope: Scope | None = None,
    grantees: list[User] = (),
) -> Decision:
    """Record a reviewer's decision; the approval that completes the policy issues the grant.

    The request row is locked, so two reviewers deciding at once end in one outcome and at
    most one grant (the grant's one-to-one key on the request is a second wall).
    """
    with transaction.atomic():
        request = DataPullRequest.objects.select_for_update().select_related("case").get(pk=request.pk)
        problem = independence_problem(actor, request)
        if problem:
            raise PermissionDenied(problem)
        if request.status != RequestStatus.SUBMITTED:
            raise InvalidTransition(f"The request is {request.get_status_display().lower()}; it cannot be decided.")
        if request.case.status != CaseStatus.OPEN:
            raise InvalidTransition("The case is not open.")
        if outcome not in DecisionOutcome.values:
            raise ValidationError({"outcome": "Choose approve, approve narrowed, reject or return."})
        if outcome != DecisionOutcome.APPROVE and not reason.strip():
            raise ValidationError({"reason": "Give the reason for this decision."})
        approved = _approved_scope(request, outcome, scope)
        earlier = list(request.decisions.filter(review_round=request.review_round))
        if any(decision.reviewer_id == actor.pk for decision in earlier):
            raise InvalidTransition("You have already decided this request; a second reviewer must decide.")
        decision = Decision.objects.create(
            request=request,
            review_round=request.review_round,
            reviewer=actor,
            reviewer_was_senior=actor.is_senior_reviewer,
            outcome=outcome,
            reason=reason,
            subjects=list(approved.subjects) if approved else [],
            categories=list(approved.categories) if approved else [],
            window_start=approved.window_start if approved else None,
            window_end=approved.window_end if approved else None,
            duration_hours=approved.duration_hours if approved else None,
        )
        audit.record(
            action=Action.DECISION_RECORDED,
            actor=actor,
            target=request,
            case_reference=request.case.reference,
            details={"outcome": outcome, "reason": reason, "approved_scope": _scope_dict(approved)},
        )
        _apply(actor=actor, request=request, decision=decision, earlier=earlier, grantees=grantees)
    return decision


def _scope_dict(scope: Scope | None) -> dict | None:
    if scope is None:
        return None
    return {
        "subjects": list(scope.subjects),
        "categories": list(scope.categories),
        "window_start": scope.window_start.isoformat(),
        "window_end": scope.window_end.isoformat(),
        "duration_hours": scope.duration_hours,
    }


def _approved_scope(request: DataPullRequest, outcome: str, scope: Scope | None) -> Scope | None:
    if outcome == DecisionOutcome.APPROVE:
        return _scope_of(request)
    if outcome == DecisionOutcome.APPROVE_NARROWED:
        if scope is None:
            raise ValidationError({"outcome": "A narrowed approval needs the narrowed scope."})
        check_narrowing(_scope_of(request), scope)
        return scope
    return None


def _apply(*, actor, request, decision, earlier, grantees) -> None:
    if decision.outcome in (DecisionOutcome.REJECT, DecisionOutcome.RETURN):
        request.status = (
            RequestStatus.REJECTED if decision.outcome == DecisionOutcome.REJECT else RequestStatus.RETURNED
        )
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at", "updated_at"])
        return
    approvals = [d for d in [*earlier, decision] if d.is_approval]
    required, senior_needed = approvals_needed(request)
    if len({d.reviewer_id for d in approvals}) < required:
        return
    if senior_needed and not any(d.reviewer_was_senior for d in approvals):
        return
    _issue_grant(actor=actor, request=request, approvals=approvals, grantees=grantees)


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


def _issue_grant(*, actor, request, approvals, grantees) -> Grant:
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
    people = {request.requested_by_id: request.requested_by}
    for user in grantees:
        if request.case.is_on_team(user) and user.is_active:
            people[user.pk] = user
    grant.grantees.set(people.values())
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
            "scope": _scope_dict(scope),
            "grantees": sorted(user.username for user in people.values()),
            "expires_at": grant.expires_at.isoformat(),
        },
    )
    for user in people.values():
        for codename in GRANTEE_PERMS:
            assign_perm(codename, user, grant)
    return grant


def grant_revoke(*, actor: User | None, grant: Grant, reason: str) -> Grant:
    """Revoke a grant now: it stops working at once, whatever the expiry task does."""
    if not reason.strip():
        raise ValidationError({"reason": "Give the reason for revoking the grant."})
    with transaction.atomic():
        grant = Grant.objects.select_for_update().select_related("case").get(pk=grant.pk)
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
    return grant
