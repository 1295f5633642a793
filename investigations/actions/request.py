"""Data-pull requests: filing, editing, submitting, deciding, lapsing. The grant an approval
issues, and revoking it, are in ``grant``."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

import audit
from accounts.models import User
from audit.events import Action

from .. import notify, policy
from ..access import independence_problem, object_perms, request_problem
from ..errors import InvalidTransition
from ..gateway import DIRECT_KINDS, check_links, classify, resolve_subjects
from ..models import (
    Case,
    DataPullRequest,
    Decision,
    DecisionOutcome,
    NotificationKind,
    RequestStatus,
)
from ..models.request import APPROVING_OUTCOMES, EDITABLE_STATUSES
from ..scope import Scope, check_narrowing, limits, scope_errors
from . import membership, notification, oversight
from .grant import issue_grant
from .locks import locked, retry_on_conflict


def _merge(errors: dict[str, list[str]], more: dict) -> None:
    for field, messages in more.items():
        errors.setdefault(field, []).extend([messages] if isinstance(messages, str) else messages)


def _identifier_errors(identifiers: list[str]) -> dict[str, str]:
    cleaned = [identifier.strip().removeprefix("@").lower() for identifier in identifiers if identifier.strip()]
    if not cleaned:
        return {"subjects": "Name at least one subject."}
    if len(cleaned) > limits()["MAX_SUBJECTS"]:
        return {"subjects": f"At most {limits()['MAX_SUBJECTS']} subjects per request; this names {len(cleaned)}."}
    repeated = sorted({identifier for identifier in cleaned if cleaned.count(identifier) > 1})
    if repeated:
        return {"subjects": f"Named more than once: {', '.join(repeated)}."}
    return {}


def _resolve(*, actor: User, request: DataPullRequest, identifiers: list[str]) -> None:
    """Resolve typed identifiers through the gateway's audited lookup and store how each was found.

    An account id or handle that names no account is a field error, and so is naming one
    account twice directly (by id and by handle): both are about what the requester typed.
    Nothing about what an email, phone, IP or device reaches is an error, a count or a flag
    for the requester (invariant 10): one that reaches no account, or more than the cap
    (those are not included), is stored as such for the reviewers, who decide on it.
    The lookup is on the ledger whatever happens to the draft, and oversight counts lookups.
    """
    resolution = resolve_subjects(
        actor=actor,
        identifiers=identifiers,
        case_reference=request.case.reference,
        window_start=request.window_start,
        window_end=request.window_end,
    )
    oversight.scan_soon()  # repeated lookups by one user raise an alert (identifier probing)
    unknown = [identifier for identifier in resolution.unknown if classify(identifier)[0] in DIRECT_KINDS]
    if unknown:
        raise ValidationError(
            {"subjects": f"No account matches: {', '.join(unknown)}. Check the account id or handle."}
        )
    named = [account for entry in resolution.found if entry["kind"] in DIRECT_KINDS for account in entry["accounts"]]
    if len(named) != len(set(named)):
        raise ValidationError({"subjects": "Two identifiers name the same account; name each subject once."})
    request.subjects = resolution.accounts
    request.subject_inputs = _inputs_as_typed(resolution, identifiers)
    request.linked_subjects = {str(account): others for account, others in resolution.linked.items()}
    request.employee_subjects = resolution.employees


def _inputs_as_typed(resolution, identifiers: list[str]) -> list[dict]:
    """One entry per typed identifier, in the order typed (never in the order of what was found)."""
    found = {entry["input"]: entry for entry in resolution.found}
    too_broad = set(resolution.too_broad)
    entries = []
    for identifier in (typed.strip() for typed in identifiers if typed.strip()):
        entry = found.get(identifier) or {"input": identifier, "kind": classify(identifier)[0], "accounts": []}
        entries.append(entry | ({"too_broad": True} if identifier in too_broad else {}))
    return entries


def _subject_problems(subjects) -> list[str]:
    """What stops approving these resolved subjects (for the reviewers; the team is not told)."""
    if not subjects:
        return ["No typed identifier reaches an account."]
    if len(subjects) > limits()["MAX_SUBJECTS"]:
        return [f"The identifiers reach {len(subjects)} accounts; at most {limits()['MAX_SUBJECTS']} may be approved."]
    return []


def approval_problems(request: DataPullRequest) -> list[str]:
    """Why ``request`` cannot be approved as it stands, for the reviewers' pages (nothing is saved)."""
    probe = copy.copy(request)
    problems = list(_assess_protection(probe, keep=True).values())
    return problems + _subject_problems(request.subjects)


def _assess_protection(request: DataPullRequest, *, keep: bool = False) -> dict[str, str]:
    """Set the request's protection from the registry and its case type's purpose limit.

    Returns field errors (empty when none): a purpose limit in "refuse" mode, or a legal basis
    the protected policy does not accept. With ``keep`` (after submission), protection is only
    ever added, never taken away.
    """
    categories = policy.protected_categories(request.subjects, request.linked_subjects)
    limit = policy.purpose_limit(
        case_type=request.case.case_type,
        categories=request.categories,
        subjects=request.subjects,
        employees=request.employee_subjects,
    )
    errors = {}
    if limit.categories and limit.mode == "refuse":
        errors["categories"] = f"{limit.message} Remove these categories or these subjects."
    escalated = list(limit.categories) if limit.mode == "escalate" else []
    if keep:
        categories = sorted(set(categories) | set(request.protected_categories))
        escalated = sorted(set(escalated) | set(request.purpose_limited))
    request.protected_categories = categories
    request.is_protected = bool(categories)
    request.purpose_limited = escalated
    problem = policy.legal_basis_error(policy.request_policy(request), request.legal_basis)
    if problem:
        errors["legal_basis"] = problem
    return errors


PROTECTION_FIELDS = ["is_protected", "protected_categories", "purpose_limited"]
RESOLVED_FIELDS = ["subjects", "subject_inputs", "linked_subjects", "employee_subjects", *PROTECTION_FIELDS]


def _justification_errors(justification: str, legal_basis: str, legal_basis_other: str) -> dict[str, str]:
    errors = {}
    if len(justification.strip()) < limits()["MIN_JUSTIFICATION"]:
        errors["justification"] = (
            f"Explain why this data is needed (at least {limits()['MIN_JUSTIFICATION']} characters)."
        )
    if legal_basis == "other" and not legal_basis_other.strip():
        errors["legal_basis_other"] = "Describe the legal basis."
    return errors


def _validated_subjects(*, actor: User, request: DataPullRequest, identifiers: list[str]) -> None:
    """Check everything about ``request``, resolve its subjects and assess its protection.

    Raises the field errors of the request itself all at once.

    The audited subject lookup runs only once the rest is valid and the identifiers are sane
    (no lookup of 10,000 names), and it is recorded even if the request is then refused. No
    error after it depends on what an email, phone, IP or device reaches or on the registry.
    """
    errors: dict[str, list[str]] = {}
    _merge(errors, _justification_errors(request.justification, request.legal_basis, request.legal_basis_other))
    try:
        request.full_clean(exclude=["subjects", "subject_inputs", "case", "requested_by", *RESOLVED_FIELDS])
    except ValidationError as error:
        _merge(errors, error.message_dict)
    if "window_start" not in errors and "window_end" not in errors and "duration_hours" not in errors:
        scope = request.requested_scope()
        _merge(errors, {k: v for k, v in scope_errors(scope).items() if k != "subjects"})
    _merge(errors, _identifier_errors(identifiers))
    if errors:
        raise ValidationError(errors)
    _resolve(actor=actor, request=request, identifiers=identifiers)
    # Assessed and stored for the reviewers, never refused here: whether the policy applies, or
    # the legal basis falls short of it, must not be learnable from a draft (invariant 10).
    _assess_protection(request)


@retry_on_conflict
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
    """File a draft request on a case; only the case team may, and not on a closed or rejected case.

    Subjects are typed identifiers (account ids or handles); they are resolved to accounts
    through the gateway's audited lookup, and an identifier that matches no account is a
    field error. Nothing is saved unless everything is valid.
    """
    if "file_request" not in object_perms(actor, case):
        raise PermissionDenied("Only the case team may file data-pull requests.")
    if not case.accepts_requests:
        raise InvalidTransition(f"The case is {case.status_phrase}; no requests can be filed.")
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
    )
    _validated_subjects(actor=actor, request=request, identifiers=list(subjects))
    with transaction.atomic():
        request.save()
        membership.request_filed(case=case, user=actor)
        audit.record(
            action=Action.REQUEST_CREATED,
            actor=actor,
            target=request,
            case_reference=case.reference,
            details={
                "scope": request.scope(),
                "legal_basis": legal_basis,
                "protected": request.protected_categories,
                "purpose_limit": request.purpose_limited,
            },
        )
    return request


EDITABLE_FIELDS = (
    "categories",
    "window_start",
    "window_end",
    "justification",
    "legal_basis",
    "legal_basis_other",
    "duration_hours",
)


@retry_on_conflict
def request_update(*, actor: User, request: DataPullRequest, subjects: list[str], **fields) -> DataPullRequest:
    """Edit a draft or returned request (the requester only). A submitted or decided one never changes.

    ``fields`` are any of ``EDITABLE_FIELDS``; subjects are retyped identifiers, resolved again.
    """
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    problem = request_problem(actor, request, "edit")
    if problem:
        raise PermissionDenied(problem)
    current = DataPullRequest.objects.select_related("case").get(pk=request.pk)
    _check_editable(current)
    before = current.scope()
    for name, value in fields.items():
        setattr(current, name, list(value) if name == "categories" else value)
    _validated_subjects(actor=actor, request=current, identifiers=list(subjects))
    with transaction.atomic():
        # It may have been submitted meanwhile.
        _check_editable(locked(DataPullRequest.objects).get(pk=request.pk))  # it may have been submitted meanwhile
        current.save(update_fields=[*EDITABLE_FIELDS, *RESOLVED_FIELDS, "updated_at"])
        audit.record(
            action=Action.REQUEST_UPDATED,
            actor=actor,
            target=current,
            case_reference=current.case.reference,
            details={"before": before, "after": current.scope()},
        )
    return current


def _check_editable(request: DataPullRequest) -> None:
    if request.status not in EDITABLE_STATUSES:
        raise InvalidTransition(
            f"The request is {request.get_status_display().lower()}; only drafts and returned requests can be edited."
        )


@retry_on_conflict
def request_withdraw(*, actor: User, request: DataPullRequest, reason: str = "") -> DataPullRequest:
    """Withdraw a draft or returned request (the requester or the case lead)."""
    with transaction.atomic():
        request = locked(DataPullRequest.objects).select_related("case").get(pk=request.pk)
        problem = request_problem(actor, request, "withdraw")
        if problem:
            raise PermissionDenied(problem)
        if request.status not in EDITABLE_STATUSES:
            raise InvalidTransition(
                f"The request is {request.get_status_display().lower()}; only drafts and returned requests "
                "can be withdrawn."
            )
        request.status = RequestStatus.WITHDRAWN
        request.save(update_fields=["status", "updated_at"])
        audit.record(
            action=Action.REQUEST_WITHDRAWN,
            actor=actor,
            target=request,
            case_reference=request.case.reference,
            details={"reason": reason},
        )
    return request


@retry_on_conflict
def request_submit(*, actor: User, request: DataPullRequest) -> DataPullRequest:
    """Send a draft (or returned) request to legal. Only the requester, only on an open case.

    Protection is assessed again (the registry and the links to it may have changed since the
    draft) and stored, but never refused here: the requester learns nothing of the registry or
    of what the identifiers reach before a decision (invariant 10). The protected policy's
    legal basis and the case type's purpose limit are enforced at each decision, where a
    request that falls short cannot be approved. Reviewers are emailed on commit; a request
    needing the protected policy also alerts oversight (the scan reads the submission event).
    """
    with transaction.atomic():
        request = locked(DataPullRequest.objects).select_related("case", "requested_by").get(pk=request.pk)
        problem = request_problem(actor, request, "submit")
        if problem:
            raise PermissionDenied(problem)
        if request.status not in EDITABLE_STATUSES:
            raise InvalidTransition(f"The request is {request.get_status_display().lower()}; it cannot be submitted.")
        if not request.case.is_open:
            raise InvalidTransition("Requests can be submitted only on a case that legal has approved and is open.")
        if "file_request" not in object_perms(actor, request.case):
            raise PermissionDenied("You are no longer on the case team; the request cannot be submitted.")
        _check_window(request)  # "today" moves on: the window is checked again
        links = check_links(actor=actor, accounts=request.subjects, case_reference=request.case.reference)
        request.linked_subjects = {str(account): others for account, others in links.items()}
        _assess_protection(request)  # stored for the reviewers and oversight; enforced at each decision
        request.status = RequestStatus.SUBMITTED
        request.review_round += 1
        request.submitted_at = timezone.now()
        request.save(
            update_fields=[
                "status",
                "review_round",
                "submitted_at",
                "linked_subjects",
                *PROTECTION_FIELDS,
                "updated_at",
            ]
        )
        audit.record(
            action=Action.REQUEST_SUBMITTED,
            actor=actor,
            target=request,
            case_reference=request.case.reference,
            details=_oversight_details(request)
            | {"scope": request.scope(), "case_type": request.case.case_type, "legal_basis": request.legal_basis},
        )
        _notify_submitted(request)
        oversight.scan_soon()
    return request


def _check_window(request: DataPullRequest) -> None:
    problems_by_field = scope_errors(request.requested_scope())
    errors = {field: problems for field, problems in problems_by_field.items() if field != "subjects"}
    if errors:
        raise ValidationError(errors)


def _oversight_details(request: DataPullRequest) -> dict:
    """What oversight reads off submission and decision events (the alert engine relies on these keys)."""
    return {
        "protected": list(request.protected_categories),
        "subjects": [int(subject) for subject in request.subjects],
        "purpose_limit": list(request.purpose_limited),
        "linked": dict(request.linked_subjects),
    }


def _notify_submitted(request: DataPullRequest) -> None:
    link = reverse("investigations:request_detail", args=[request.pk])
    context = {"request": request, "url": notify.site_url(link)}
    notify.queue("request-submitted", notify.reviewer_addresses(exclude_case=request.case), context)
    notification.notify(
        actor=request.requested_by,
        recipients=notify.reviewers(exclude_case=request.case),
        kind=NotificationKind.REQUEST_SUBMITTED,
        text=f"Request {request.pk} on {request.case.reference} awaits a decision.",
        link=link,
    )
    # Oversight hears of a protected request from the alert scan (actions.oversight), which
    # reads the ``request.submitted`` event above: one path for every alert.


def approvals_still_needed(request: DataPullRequest, approvals: Iterable[Decision] | None = None) -> str:
    """What the current round still needs before a grant exists, in words ("" when nothing)."""
    if approvals is None:
        approvals = request.decisions.filter(review_round=request.review_round, outcome__in=APPROVING_OUTCOMES)
    approvals = list(approvals)
    rule = policy.request_policy(request)
    missing = rule.approvals - len({decision.reviewer_id for decision in approvals})
    missing_senior = rule.senior - len({d.reviewer_id for d in approvals if d.reviewer_was_senior})
    if missing <= 0 and missing_senior <= 0:
        return ""
    if missing_senior > 0:
        if missing <= 1 and missing_senior == 1:
            return "one approval by a senior legal reviewer"
        if rule.approvals == 2 and rule.senior == 1:
            return "two approvals by two different reviewers, at least one of them a senior legal reviewer"
        return (
            f"{max(missing, missing_senior)} more approvals by different reviewers, "
            f"{missing_senior} of them by senior legal reviewers"
        )
    return "one more approval by a different reviewer" if missing == 1 else f"{missing} approvals"


@retry_on_conflict
def request_decide(
    *,
    actor: User,
    request: DataPullRequest,
    outcome: str,
    reason: str = "",
    scope: Scope | None = None,
    grantees: Iterable[User] = (),
) -> Decision:
    """Record a reviewer's decision; the approval that completes the policy issues the grant.

    Independence is enforced here, not in pages: the requester, the case team and anyone
    holding a grant on the case may not decide. A request naming a protected subject needs
    two approvals by two different reviewers, at least one senior.

    Race: the request row is locked (``SELECT ... FOR UPDATE``) before its state is read, so
    two reviewers deciding at once are serialised: the second sees the first's outcome. The
    grant's one-to-one key on the request and the one-decision-per-reviewer constraint are
    second walls.
    """
    with transaction.atomic():
        request = locked(DataPullRequest.objects).select_related("case", "requested_by").get(pk=request.pk)
        problem = independence_problem(actor, request)
        if problem:
            raise PermissionDenied(problem)
        _check_decidable(request)
        refused = _refresh_protection(request)
        errors = {}
        if outcome not in DecisionOutcome.values:
            errors["outcome"] = "Choose approve, approve narrowed, reject or return for changes."
        elif outcome != DecisionOutcome.APPROVE and not reason.strip():
            errors["reason"] = "Give the reason for this decision."
        if outcome in APPROVING_OUTCOMES and refused:
            errors["outcome"] = "This request cannot be approved: " + " ".join(refused.values())
        if errors:
            raise ValidationError(errors)
        approved = _approved_scope(request, outcome, scope)
        if approved and _subject_problems(approved.subjects):
            raise ValidationError(
                {"outcome": "This request cannot be approved: " + _subject_problems(approved.subjects)[0]}
            )
        people = _check_grantees(request, grantees) if approved else []
        earlier = list(request.decisions.filter(review_round=request.review_round))
        if any(decision.reviewer_id == actor.pk for decision in earlier):
            raise InvalidTransition("You have already decided this request; a different reviewer must decide.")
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
            details=_oversight_details(request)
            | {"outcome": outcome, "reason": reason, "approved_scope": approved.as_record() if approved else None},
        )
        oversight.scan_soon()
        still_needed = _apply(actor=actor, request=request, decision=decision, earlier=earlier, grantees=people)
        _notify_decided(request, decision, still_needed)
    return decision


def _check_decidable(request: DataPullRequest) -> None:
    if request.status != RequestStatus.SUBMITTED:
        raise InvalidTransition(f"The request is {request.get_status_display().lower()}; it cannot be decided.")
    if not request.case.is_open:
        raise InvalidTransition("The case is not open; its requests cannot be decided.")
    if request_is_overdue(request, timezone.now()):
        raise InvalidTransition("The request was not decided in time and lapses; the requester must file it again.")


def _refresh_protection(request: DataPullRequest) -> dict[str, str]:
    """Assess protection again at decision time (never less than at submission); returns field errors.

    A subject put on the registry after submission still needs the protected policy, and the
    legal basis and purpose limit are checked against the settings in force now.
    """
    before = (request.protected_categories, request.purpose_limited)
    errors = _assess_protection(request, keep=True)
    if (request.protected_categories, request.purpose_limited) != before:
        request.save(update_fields=[*PROTECTION_FIELDS, "updated_at"])
    return errors


def _check_grantees(request: DataPullRequest, grantees: Iterable[User]) -> list[User]:
    """The requester plus the active team members the approver names; anyone else is refused."""
    requester = request.requested_by
    if not requester.is_active or not request.case.is_on_team(requester):
        raise InvalidTransition("The requester is no longer an active member of the case team; reject the request.")
    people = {requester.pk: requester}
    named = [user for user in grantees if user.pk not in people]
    # One statement for every named grantee (not one per grantee): who of them is on the team.
    on_team = set(request.case.members.filter(user__in=[user.pk for user in named]).values_list("user_id", flat=True))
    refused = []
    for user in named:
        if user.pk in people:
            continue
        if user.is_active and user.pk in on_team:
            people[user.pk] = user
        else:
            refused.append(user.username)
    if refused:
        raise ValidationError({"grantees": f"Not active members of the case team: {', '.join(sorted(refused))}."})
    return list(people.values())


def _notify_decided(request: DataPullRequest, decision: Decision, still_needed: str) -> None:
    if request.status == RequestStatus.SUBMITTED:
        # An approval that did not complete the request: telling the requester would tell them
        # that the protected policy applies (invariant 10). They hear of the outcome.
        return
    headline = request.get_status_display().lower()
    context = {
        "request": request,
        "decision": decision,
        "headline": headline,
        "still_needed": still_needed,
        "url": notify.site_url(reverse("investigations:request_detail", args=[request.pk])),
    }
    notify.queue("request-decided", [request.requested_by.email], context)
    returned = decision.outcome == DecisionOutcome.RETURN
    if request.status == RequestStatus.APPROVED and decision.outcome == DecisionOutcome.APPROVE_NARROWED:
        headline = "approved with a narrower scope"
    if not headline.startswith("has"):
        headline = f"was {headline}"
    notification.notify(
        actor=decision.reviewer,
        recipients=[request.requested_by],
        kind=NotificationKind.REQUEST_RETURNED if returned else NotificationKind.REQUEST_DECIDED,
        text=f"Request {request.pk} on {request.case.reference} {headline}"
        + (f": {decision.reason}" if returned and decision.reason else "."),
        link=reverse("investigations:request_edit" if returned else "investigations:request_detail", args=[request.pk]),
    )
    # Oversight hears of every decision on a protected request from the alert scan, which reads
    # the ``decision.recorded`` event (actions.oversight): one path for every alert.


def _approved_scope(request: DataPullRequest, outcome: str, scope: Scope | None) -> Scope | None:
    if outcome == DecisionOutcome.APPROVE:
        return request.requested_scope()
    if outcome == DecisionOutcome.APPROVE_NARROWED:
        if scope is None:
            raise ValidationError({"outcome": "A narrowed approval needs the narrowed scope."})
        check_narrowing(request.requested_scope(), scope)
        return scope
    return None


def _apply(*, actor: User, request: DataPullRequest, decision: Decision, earlier, grantees) -> str:
    """Move the request on after a decision; returns what approvals are still needed ("" if none)."""
    if decision.outcome in (DecisionOutcome.REJECT, DecisionOutcome.RETURN):
        request.status = (
            RequestStatus.REJECTED if decision.outcome == DecisionOutcome.REJECT else RequestStatus.RETURNED
        )
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at", "updated_at"])
        return ""
    approvals = [d for d in [*earlier, decision] if d.is_approval]
    still_needed = approvals_still_needed(request, approvals)
    if not still_needed:
        issue_grant(actor=actor, request=request, approvals=approvals, grantees=grantees)
    return still_needed


# --- lapsing -----------------------------------------------------------------------------


def request_is_overdue(request: DataPullRequest, now: datetime) -> bool:
    """The TTL rule: a submitted request undecided for ``REQUEST_TTL_HOURS`` lapses."""
    return (
        request.status == RequestStatus.SUBMITTED
        and request.submitted_at is not None
        and request.submitted_at + _ttl() <= now
    )


def _ttl() -> timedelta:
    return timedelta(hours=limits()["REQUEST_TTL_HOURS"])


@retry_on_conflict
def request_lapse(*, actor: User | None = None, request: DataPullRequest, now: datetime | None = None) -> bool:
    """Lapse one overdue submitted request; False (and nothing changes) if it is not overdue."""
    now = now or timezone.now()
    with transaction.atomic():
        request = locked(DataPullRequest.objects).select_related("case", "requested_by").get(pk=request.pk)
        if not request_is_overdue(request, now):
            return False
        _lapse(actor, request, now)
    return True


def _lapse(actor: User | None, request: DataPullRequest, now: datetime) -> None:
    request.status = RequestStatus.LAPSED
    request.decided_at = now
    request.save(update_fields=["status", "decided_at", "updated_at"])
    audit.record(
        action=Action.REQUEST_LAPSED,
        actor=actor,
        target=request,
        case_reference=request.case.reference,
        details={"submitted_at": request.submitted_at.isoformat(), "ttl_hours": limits()["REQUEST_TTL_HOURS"]},
    )
    context = {
        "request": request,
        "ttl_hours": limits()["REQUEST_TTL_HOURS"],
        "url": notify.site_url(reverse("investigations:request_detail", args=[request.pk])),
    }
    notify.queue("request-lapsed", [request.requested_by.email], context)
    notification.notify(
        actor=actor,
        recipients=[request.requested_by],
        kind=NotificationKind.REQUEST_LAPSED,
        text=f"Request {request.pk} on {request.case.reference} was not decided in time and has lapsed.",
        link=reverse("investigations:request_detail", args=[request.pk]),
    )


def lapse_overdue_requests(now: datetime | None = None) -> int:
    """Lapse every overdue submitted request (the periodic task calls this); returns how many.

    The due rows are locked (skipping any a reviewer holds right now: that one is deciding,
    and a later run will catch it if it stays undecided), so a decision and a lapse never
    both apply; one ledger event per request.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = (
            locked(DataPullRequest.objects, skip_locked=True)
            .filter(status=RequestStatus.SUBMITTED, submitted_at__lte=now - _ttl())
            .select_related("case", "requested_by")
        )
        lapsed = 0
        for request in due:
            _lapse(None, request, now)
            lapsed += 1
    return lapsed
