"""The protected-subject registry: add, change, and the two-person path to weaken it; each step audited.

Administrators (staff, through the admin) and senior legal reviewers (through their registry
page) add entries and make changes that keep or raise protection. Weakening it, removing an
entry or moving it to a category whose policy asks less, takes two senior legal reviewers:
one proposes, another confirms, and until then the entry protects as before. Proposal and
confirmation each raise a critical oversight alert in their own transaction. A removed entry
still protects its account for ``CUSTOS["REGISTRY_COOLING_DAYS"]`` (``ProtectedSubject.in_force``).
A change never loosens a request already submitted: protection found at submission is kept
until the request is decided.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import User
from audit.events import Action

from .. import policy
from ..access import may_manage_registry
from ..errors import InvalidTransition
from ..models import ID_MAX, ProposalKind, ProposalStatus, ProtectedCategory, ProtectedSubject, RegistryProposal
from . import oversight
from .locks import locked

REGISTRY_FIELDS = ("category", "source", "note")
WEAKER_MESSAGE = (
    "The policy of this category asks less than the current one: moving the entry there is a proposal that "
    "a second senior legal reviewer must confirm."
)


def _check_manager(actor: User) -> None:
    if not may_manage_registry(actor):
        raise PermissionDenied("Only administrators and senior legal reviewers manage the protected-subject registry.")


def _check_senior(actor: User, what: str) -> None:
    if not (actor.is_authenticated and actor.is_active and actor.is_senior_reviewer):
        raise PermissionDenied(f"Only senior legal reviewers {what}.")


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
    if "account_id" not in exclude and "account_id" not in errors and not 0 < int(subject.account_id) <= ID_MAX:
        errors["account_id"] = ["An account id is a positive whole number."]
    if errors:
        raise ValidationError(errors)


def _reason(reason: str, what: str) -> str:
    if not reason.strip():
        raise ValidationError({"reason": f"Give the reason for {what} (it goes into the audit trail)."})
    return reason.strip()


def _locked_listed(subject: ProtectedSubject) -> ProtectedSubject:
    current = locked(ProtectedSubject.objects).filter(pk=subject.pk, removed_at__isnull=True).first()
    if current is None:
        raise ValidationError("This account is no longer on the registry.")
    return current


def protected_subject_add(
    *, actor: User, account_id: int, category: str, note: str = "", source: str = ""
) -> ProtectedSubject:
    """Put an account on the registry: requests touching it then need the protected policy.

    An account removed earlier comes back on its old row (the account id stays unique).
    """
    _check_manager(actor)
    with transaction.atomic():
        removed = locked(ProtectedSubject.objects).filter(account_id=account_id).exclude(removed_at=None)
        subject = removed.first() or ProtectedSubject(account_id=account_id)
        subject.category, subject.note, subject.source = category, note, source
        subject.added_by, subject.removed_at = actor, None
        _clean(subject, exclude=("account_id",) if subject.pk else ())
        if subject.pk:
            subject.added_at = timezone.now()  # auto_now_add only sets it on the first insert
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
    """Change an entry's source or note, or move it to a category asking at least as much.

    A weaker category is refused here (a field error): that is ``protected_weakening_propose``.
    The account of an entry never changes: remove and add for that.
    """
    _check_manager(actor)
    reason = _reason(reason, "the change")
    with transaction.atomic():
        current = _locked_listed(subject)
        before = _entry(current)
        current.category, current.note, current.source = category, note, source
        _clean(current, exclude=("account_id",))
        if _entry(current) == before:
            raise ValidationError("Nothing was changed.")
        if policy.is_weaker(before["category"], category):
            raise ValidationError({"category": WEAKER_MESSAGE})
        current.changed_by, current.changed_at = actor, timezone.now()
        current.save(update_fields=[*REGISTRY_FIELDS, "changed_by", "changed_at"])
        audit.record(
            action=Action.PROTECTED_SUBJECT_CHANGED,
            actor=actor,
            target=current,
            details={"account_id": current.account_id, "before": before, "after": _entry(current), "reason": reason},
        )
    return current


# --- weakening: two senior legal reviewers ----------------------------------------------------


def protected_weakening_propose(
    *,
    actor: User,
    subject: ProtectedSubject,
    reason: str,
    category: str = "",
    source: str | None = None,
    note: str | None = None,
) -> RegistryProposal:
    """Propose removing an entry (no ``category``) or moving it to a weaker ``category``.

    Senior legal reviewers only. Nothing changes until another senior reviewer confirms; the
    proposal is recorded (``protected_subject.weakening_proposed``) and raises a critical
    oversight alert in the same transaction.
    """
    _check_senior(actor, "propose removing or downgrading a registry entry")
    reason = _reason(reason, "the proposal")
    with transaction.atomic():
        current = _locked_listed(subject)
        kind = ProposalKind.DOWNGRADE if category else ProposalKind.REMOVE
        if kind == ProposalKind.DOWNGRADE:
            if category not in ProtectedCategory.values:
                raise ValidationError({"category": "Choose one of the registry categories."})
            if not policy.is_weaker(current.category, category):
                raise ValidationError({"category": "This category asks as much as the current one: change the entry."})
        if RegistryProposal.objects.filter(subject=current, status=ProposalStatus.PENDING).exists():
            raise ValidationError("A proposal for this entry already awaits a second senior reviewer.")
        proposal = RegistryProposal.objects.create(
            subject=current,
            kind=kind,
            category_before=current.category,
            category_after=category,
            source_after=current.source if source is None else source,
            note_after=current.note if note is None else note,
            reason=reason,
            proposed_by=actor,
        )
        event = audit.record(
            action=Action.PROTECTED_SUBJECT_WEAKENING_PROPOSED,
            actor=actor,
            target=current,
            details=_proposal_details(proposal) | {"reason": reason},
        )
        oversight.raise_now(event)
    return proposal


def _proposal_details(proposal: RegistryProposal) -> dict:
    """What oversight reads off the weakening events (the alert engine relies on these keys)."""
    return {
        "proposal": proposal.pk,
        "kind": proposal.kind,
        "account_id": proposal.subject.account_id,
        "category_before": proposal.category_before,
        "category_after": proposal.category_after,
        "proposed_by": proposal.proposed_by.username,
    }


def _locked_pending(proposal: RegistryProposal) -> RegistryProposal:
    proposal = locked(RegistryProposal.objects.select_related("proposed_by", "subject")).get(pk=proposal.pk)
    if not proposal.is_pending:
        raise InvalidTransition(f"The proposal is already {proposal.get_status_display().lower()}.")
    return proposal


def protected_weakening_confirm(*, actor: User, proposal: RegistryProposal) -> RegistryProposal:
    """A second senior legal reviewer, not the proposer, confirms: the weakening takes effect.

    A removal keeps the row (``removed_at``): the account stays protected for the cooling
    period. Recorded (``protected_subject.weakening_confirmed``, with the entry before and
    after) and raises a critical oversight alert in the same transaction.
    """
    _check_senior(actor, "confirm removing or downgrading a registry entry")
    with transaction.atomic():
        proposal = _locked_pending(proposal)
        if proposal.proposed_by_id == actor.pk:
            raise PermissionDenied("You proposed this change; a second senior legal reviewer must confirm it.")
        subject = locked(ProtectedSubject.objects).get(pk=proposal.subject_id)
        if subject.is_removed or subject.category != proposal.category_before:
            raise InvalidTransition("The entry changed after the proposal; withdraw it and propose again.")
        before = _entry(subject)
        now = timezone.now()
        if proposal.kind == ProposalKind.REMOVE:
            subject.removed_at = now
        else:
            subject.category, subject.source, subject.note = (
                proposal.category_after,
                proposal.source_after,
                proposal.note_after,
            )
        subject.changed_by, subject.changed_at = actor, now
        subject.save(update_fields=[*REGISTRY_FIELDS, "removed_at", "changed_by", "changed_at"])
        proposal.status, proposal.decided_by, proposal.decided_at = ProposalStatus.CONFIRMED, actor, now
        proposal.save(update_fields=["status", "decided_by", "decided_at"])
        details = _proposal_details(proposal) | {"before": before, "after": _entry(subject), "reason": proposal.reason}
        if subject.protected_until:
            details["protected_until"] = subject.protected_until.isoformat()
        event = audit.record(
            action=Action.PROTECTED_SUBJECT_WEAKENING_CONFIRMED, actor=actor, target=subject, details=details
        )
        oversight.raise_now(event)
    return proposal


def protected_weakening_withdraw(*, actor: User, proposal: RegistryProposal, reason: str) -> RegistryProposal:
    """The proposer withdraws, or another senior legal reviewer declines, a pending proposal."""
    _check_senior(actor, "withdraw or decline a registry proposal")
    reason = _reason(reason, "withdrawing the proposal")
    with transaction.atomic():
        proposal = _locked_pending(proposal)
        proposal.status, proposal.decided_by, proposal.decided_at = ProposalStatus.WITHDRAWN, actor, timezone.now()
        proposal.decision_reason = reason
        proposal.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        audit.record(
            action=Action.PROTECTED_SUBJECT_WEAKENING_WITHDRAWN,
            actor=actor,
            target=proposal.subject,
            details=_proposal_details(proposal) | {"reason": reason},
        )
    return proposal


def registry_viewed(
    *, actor: User, page: str, subject: ProtectedSubject | None = None, request=None, **details
) -> None:
    """Record a view of the registry (its page and the admin): who looked at which protected
    accounts is itself worth knowing."""
    account = {"account_id": subject.account_id} if subject is not None else {}
    audit.record(
        action=Action.PROTECTED_SUBJECT_VIEWED,
        actor=actor,
        target=subject,
        details={"page": page, **account, **details},
        request=request,
    )
