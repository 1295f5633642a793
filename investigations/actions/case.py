from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

import audit
from accounts.models import User
from audit.events import Action

from ..access import (
    CASE_PERMS,
    CLOSED_CASE_PERMS,
    LEAD_PERMS,
    MEMBER_PERMS,
    can_review_case,
    check_case_reviewer,
    object_perms,
    record_denial,
)
from ..errors import InvalidTransition
from ..models import (
    Case,
    CaseMember,
    CasePriority,
    CaseReferenceCounter,
    CaseStatus,
    Grant,
    Tag,
)
from ..models.case import TAG_MAX, TAGS_PER_CASE, TEXT_MAX, normalise_tag
from . import membership, oversight
from .grant import case_revoke_grants, grants_leave
from .locks import locked, retry_on_conflict
from .task import tasks_from_template

EDITABLE_FIELDS = ("title", "allegation", "case_type", "purpose")
TAG_PATTERN = re.compile(r"[\w-]+")


def _next_reference() -> str:
    """``INV-<year>-<number>``: numbers are handed out under a row lock and never reused."""
    year = timezone.now().year
    CaseReferenceCounter.objects.get_or_create(year=year)
    counter = locked(CaseReferenceCounter.objects).get(year=year)
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


@retry_on_conflict
def case_open(
    *,
    actor: User,
    title: str,
    allegation: str,
    case_type: str,
    purpose: str,
    team: list[User] = (),
    priority: str = CasePriority.MEDIUM,
    tags: list[str] = (),
) -> Case:
    """Open a case led by ``actor``. It waits for a legal reviewer's approval before any request."""
    if not actor.is_active or not actor.is_investigator:
        raise PermissionDenied("Only investigators open cases.")
    for member in team:
        _check_member_candidate(member, field="team")
    tags = clean_tags(tags)
    case = Case(title=title, allegation=allegation, case_type=case_type, purpose=purpose, lead=actor, priority=priority)
    case.full_clean(exclude=["reference"])
    with transaction.atomic():
        case.reference = _next_reference()
        case.save()
        audit.record(
            action=Action.CASE_OPENED,
            actor=actor,
            target=case,
            case_reference=case.reference,
            details={"title": title, "case_type": case_type, "priority": priority, "tags": tags},
        )
        _set_tags(case, tags)
        CaseMember.objects.create(case=case, user=actor, is_lead=True, added_by=actor)
        membership.team_joined(case=case, user=actor)
        _grant_case_perms(actor=actor, case=case, user=actor, perms=LEAD_PERMS)
        for member in team:
            if member.pk != actor.pk:
                _add_member(actor=actor, case=case, user=member)
        tasks_from_template(actor=actor, case=case)
    return case


def _add_member(*, actor: User, case: Case, user: User, pending: dict | None = None) -> None:
    CaseMember.objects.create(case=case, user=user, added_by=actor)
    membership.team_joined(case=case, user=user)
    _record_team_change(Action.CASE_MEMBER_ADDED, actor=actor, case=case, user=user, pending=pending)
    _grant_case_perms(actor=actor, case=case, user=user, perms=MEMBER_PERMS)


def _record_team_change(action: Action, *, actor: User, case: Case, user: User, pending: dict | None) -> None:
    """The ledger event of a team change; with a decision pending it says which, and oversight
    is alerted (the scan reads ``decision_pending``): a team reshuffled while legal decides is
    how a non-independent reviewer would slip in."""
    details = {"user": user.username, "user_id": user.pk}
    if pending:
        details["decision_pending"] = pending
        oversight.scan_soon()
    audit.record(action=action, actor=actor, target=case, case_reference=case.reference, details=details)


@retry_on_conflict
def case_add_member(*, actor: User, case: Case, user: User) -> None:
    """Add an investigator to the team (view, notes, file requests). Needs ``manage_team``.

    The team period is kept for good (``CaseMembership``); with a decision pending on the case
    the change alerts oversight.
    """
    _require(actor, case, "manage_team")
    _check_member_candidate(user, field="user")
    with transaction.atomic():
        case = locked(Case.objects).get(pk=case.pk)
        if case.is_closed:
            raise InvalidTransition("A closed case's team cannot change.", case=case)
        if CaseMember.objects.filter(case=case, user=user).exists():
            raise ValidationError({"user": f"{user.username} is already on the team."})
        _add_member(actor=actor, case=case, user=user, pending=membership.decision_pending(case))


@retry_on_conflict
def case_approve(*, actor: User, case: Case) -> Case:
    """A legal reviewer never involved in the case approves it while pending: it opens for requests."""
    check_case_reviewer(actor, case, "approve")
    with transaction.atomic():
        case = locked(Case.objects).get(pk=case.pk)
        if not can_review_case(actor, case):
            raise PermissionDenied("Only a legal reviewer never involved in the case may approve it.")
        if not case.awaits_approval:
            raise InvalidTransition(f"The case is {case.status_phrase}, not pending approval.", case=case)
        case.status = CaseStatus.OPEN
        case.decided_by = actor
        case.decided_at = timezone.now()
        case.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
        audit.record(action=Action.CASE_APPROVED, actor=actor, target=case, case_reference=case.reference)
    return case


# --- helpers shared by the actions below ---------------------------------------------------


def _require(actor: User, case: Case, perm: str) -> None:
    """Raise ``PermissionDenied`` (and record the denial) unless ``actor`` holds ``perm`` on ``case``.

    Called outside the action's transaction so that the denial survives the refusal.
    """
    if perm not in object_perms(actor, case):
        raise record_denial(actor=actor, case=case, perm=perm)


def _locked(case: Case) -> Case:
    return locked(Case.objects).get(pk=case.pk)


def _check_status(case: Case, allowed: bool, verb: str) -> None:
    """Refuse with the case's status unless ``allowed`` (one of the case's own rules)."""
    if not allowed:
        raise InvalidTransition(f"The case is {case.status_phrase}; it cannot be {verb}.", case=case)


def _transition(*, actor: User, case: Case, to: str, action: Action, details: dict | None = None, **fields) -> Case:
    previous = case.status
    case.status = to
    for name, value in fields.items():
        setattr(case, name, value)
    case.save(update_fields=["status", "updated_at", *fields])
    audit.record(
        action=action,
        actor=actor,
        target=case,
        case_reference=case.reference,
        details={"from": previous, "to": to, **(details or {})},
    )
    return case


def _required_text(value: str, *, field: str, message: str, max_length: int = TEXT_MAX) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: message})
    if len(value) > max_length:
        raise ValidationError({field: f"At most {max_length} characters (this has {len(value)})."})
    return value


def _remove_case_perms(*, actor: User | None, case: Case, user: User, perms: tuple[str, ...], reason: str) -> None:
    held = [codename for codename in perms if codename in object_perms(user, case)]
    for codename in held:
        remove_perm(codename, user, case)
    if held:
        audit.record(
            action=Action.PERMISSION_REMOVED,
            actor=actor,
            target=case,
            case_reference=case.reference,
            details={"user": user.username, "user_id": user.pk, "permissions": held, "reason": reason},
        )


# --- editing, review, hold, close ----------------------------------------------------------


@retry_on_conflict
def case_update(*, actor: User, case: Case, **changes: str) -> Case:
    """Edit title, allegation, type or purpose. Needs ``change_case``.

    Only before approval (pending or rejected): what legal approved is what the case is, so an
    approved description is never changed under the approval.
    """
    _require(actor, case, "change_case")
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        case = _locked(case)
        _check_status(case, case.is_editable, "edited after legal approval")
        changed = {name: value for name, value in changes.items() if getattr(case, name) != value}
        for name, value in changed.items():
            setattr(case, name, value)
        case.full_clean(exclude=["reference", "lead", "decided_by"])
        if not changed:
            return case
        case.save(update_fields=[*changed, "updated_at"])
        audit.record(
            action=Action.CASE_UPDATED,
            actor=actor,
            target=case,
            case_reference=case.reference,
            details={"fields": sorted(changed)},
        )
    return case


@retry_on_conflict
def case_reject(*, actor: User, case: Case, reason: str) -> Case:
    """A legal reviewer never involved in the case rejects it while pending, with a reason the lead reads."""
    check_case_reviewer(actor, case, "reject")
    reason = _required_text(reason, field="reason", message="Give the reason for rejecting the case.")
    with transaction.atomic():
        case = _locked(case)
        _check_status(case, case.awaits_approval, "rejected")
        return _transition(
            actor=actor,
            case=case,
            to=CaseStatus.REJECTED,
            action=Action.CASE_REJECTED,
            details={"reason": reason},
            decided_by=actor,
            decided_at=timezone.now(),
            rejection_reason=reason,
        )


@retry_on_conflict
def case_resubmit(*, actor: User, case: Case) -> Case:
    """The lead sends a rejected (and usually revised) case back to legal. Needs ``change_case``."""
    _require(actor, case, "change_case")
    with transaction.atomic():
        case = _locked(case)
        _check_status(case, case.may_resubmit, "resubmitted")
        # The rejecting reviewer is forgotten on the row (any reviewer may take it now); the
        # ledger and the kept rejection reason hold the history.
        return _transition(
            actor=actor,
            case=case,
            to=CaseStatus.PENDING_APPROVAL,
            action=Action.CASE_RESUBMITTED,
            decided_by=None,
            decided_at=None,
        )


@retry_on_conflict
def case_hold(*, actor: User, case: Case) -> Case:
    """Put an open case on hold: its grants stop working until it resumes. Needs ``change_case``."""
    _require(actor, case, "change_case")
    with transaction.atomic():
        case = _locked(case)
        _check_status(case, case.may_hold, "put on hold")
        return _transition(actor=actor, case=case, to=CaseStatus.ON_HOLD, action=Action.CASE_HELD)


@retry_on_conflict
def case_resume(*, actor: User, case: Case) -> Case:
    """Resume a case on hold. Needs ``change_case``."""
    _require(actor, case, "change_case")
    with transaction.atomic():
        case = _locked(case)
        _check_status(case, case.may_resume, "resumed")
        return _transition(actor=actor, case=case, to=CaseStatus.OPEN, action=Action.CASE_RESUMED)


def _check_tasks(case: Case, override_reason: str) -> dict:
    """Closing needs every task done or cancelled, or a recorded reason to close regardless."""
    unfinished = list(case.tasks.unfinished().values_list("pk", "title"))
    if not unfinished:
        return {}
    if not override_reason:
        titles = "; ".join(title for _, title in unfinished[:5])
        raise ValidationError(
            {
                "override_reason": f"{len(unfinished)} task(s) are neither done nor cancelled ({titles}). "
                "Finish or cancel them, or give the reason to close the case regardless."
            }
        )
    return {"unfinished_tasks": [pk for pk, _ in unfinished], "override_reason": override_reason}


@retry_on_conflict
def case_close(*, actor: User, case: Case, summary: str, override_reason: str = "") -> Case:
    """Close an open or held case with a summary. Needs ``close_case``.

    Every task must be done or cancelled, unless ``override_reason`` says why the case closes
    regardless (recorded with the tasks left). In the same transaction every active grant of
    the case is revoked and the team keeps only ``view_case``: a closed case stays readable by
    its team and changes no more.
    """
    _require(actor, case, "close_case")
    summary = _required_text(summary, field="summary", message="Summarise the outcome to close the case.")
    override_reason = (override_reason or "").strip()
    if len(override_reason) > TEXT_MAX:
        raise ValidationError({"override_reason": f"At most {TEXT_MAX} characters (this has {len(override_reason)})."})
    with transaction.atomic():
        case = _locked(case)
        _check_status(case, case.may_close, "closed")
        override = _check_tasks(case, override_reason)
        revoked = case_revoke_grants(actor=actor, case=case, reason=f"Case {case.reference} closed.")
        _transition(
            actor=actor,
            case=case,
            to=CaseStatus.CLOSED,
            action=Action.CASE_CLOSED,
            details={"revoked_grants": revoked, **override},
            closed_at=timezone.now(),
            closure_summary=summary,
        )
        dropped = tuple(codename for codename in CASE_PERMS if codename not in CLOSED_CASE_PERMS)
        for membership in case.members.select_related("user"):
            _remove_case_perms(actor=actor, case=case, user=membership.user, perms=dropped, reason="case closed")
    return case


# --- team and notes ------------------------------------------------------------------------


@retry_on_conflict
def case_remove_member(*, actor: User, case: Case, user: User) -> None:
    """Take an investigator off the team. Needs ``manage_team``; the lead cannot be removed.

    Their case permissions go at once; they leave the grantees of the case's active grants,
    and a grant where they were the only grantee is revoked. Their team period is closed, not
    forgotten: they stay ineligible to decide the case. With a decision pending on the case
    the change alerts oversight.
    """
    _require(actor, case, "manage_team")
    with transaction.atomic():
        case = _locked(case)
        if case.is_closed:
            raise InvalidTransition("A closed case's team cannot change.", case=case)
        member = CaseMember.objects.filter(case=case, user=user).first()
        if member is None:
            raise ValidationError({"user": f"{user.username} is not on the team."})
        if member.is_lead:
            raise ValidationError({"user": "The case lead cannot be removed from the team."})
        member.delete()
        membership.team_left(case=case, user=user)
        pending = membership.decision_pending(case)
        _record_team_change(Action.CASE_MEMBER_REMOVED, actor=actor, case=case, user=user, pending=pending)
        _remove_case_perms(actor=actor, case=case, user=user, perms=CASE_PERMS, reason="removed from team")
        grants_leave(
            actor=actor,
            user=user,
            grants=Grant.objects.filter(case=case),
            reason=f"{user.username}, its only grantee, left the case team.",
        )


# --- priority and tags ---------------------------------------------------------------------


def clean_tags(names: list[str] | tuple[str, ...]) -> list[str]:
    """Normalised, de-duplicated tag names in the order given; a field error for a bad one."""
    tags: list[str] = []
    for name in names:
        tag = normalise_tag(name)
        if not tag:
            continue
        if len(tag) > TAG_MAX or not TAG_PATTERN.fullmatch(tag):
            message = f"“{tag[:TAG_MAX]}” is not a tag: letters, digits and hyphens, at most {TAG_MAX}."
            raise ValidationError({"tags": message})
        if tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_PER_CASE:
        raise ValidationError({"tags": f"At most {TAGS_PER_CASE} tags on a case (this has {len(tags)})."})
    return tags


def _set_tags(case: Case, names: list[str]) -> None:
    for name in names:
        Tag.objects.get_or_create(name=name)
    case.tags.set(Tag.objects.filter(name__in=names))


@retry_on_conflict
def case_classify(*, actor: User, case: Case, priority: str, tags: list[str]) -> Case:
    """Set the case's priority and tags (tags are normalised). Needs ``change_case`` on a case not over."""
    _require(actor, case, "change_case")
    if priority not in CasePriority.values:
        raise ValidationError({"priority": f"Choose one of: {', '.join(CasePriority.values)}."})
    tags = clean_tags(tags)
    with transaction.atomic():
        case = _locked(case)
        _check_status(case, case.is_active, "reclassified")
        before = sorted(case.tags.values_list("name", flat=True))
        details: dict = {}
        if case.priority != priority:
            details["priority"] = {"from": case.priority, "to": priority}
            case.priority = priority
            case.save(update_fields=["priority", "updated_at"])
        if before != sorted(tags):
            _set_tags(case, tags)
            details["tags_added"] = sorted(set(tags) - set(before))
            details["tags_removed"] = sorted(set(before) - set(tags))
        if details:
            audit.record(
                action=Action.CASE_CLASSIFIED, actor=actor, target=case, case_reference=case.reference, details=details
            )
    return case
