"""Retention and legal hold of case evidence.

A closed case's evidence is frozen (``Case.evidence_is_frozen``: no upload, no new version).
``EVIDENCE["RETENTION_DAYS"]`` after the case closed, the periodic task purges its files: each
item's file is deleted and the item stays, with its hash and ``purged_at``, and one
``evidence.purged`` event per item. A legal hold, placed by a legal reviewer independent of the
case with a reason (``case.legal_hold_set``), keeps the files however long the case has been
closed; lifting it takes two such legal reviewers, one proposing and a different one confirming
(``case.legal_hold_lift_proposed``, ``case.legal_hold_lifted``), the hold in force until then.

Hold and purge serialise on the case row: both lock it (``locked``) before they look at the
hold, so a purge never runs past a hold placed at the same moment.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import User
from audit.events import Action

from .. import custody
from ..access import get_case_for_legal_hold
from ..errors import InvalidTransition
from ..models import Case, Evidence
from ..models.case import TEXT_MAX
from .locks import locked, retry_on_conflict

logger = logging.getLogger(__name__)


def retention() -> timedelta:
    return timedelta(days=settings.EVIDENCE["RETENTION_DAYS"])


# --- legal hold ----------------------------------------------------------------------------


def _reason(reason: str, verb: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": f"Say why the legal hold is {verb}."})
    if len(reason) > TEXT_MAX:
        raise ValidationError({"reason": f"At most {TEXT_MAX} characters."})
    return reason


@retry_on_conflict
def case_legal_hold_set(*, actor: User, case: Case, reason: str) -> Case:
    """Put ``case`` under legal hold: its evidence is kept past the retention period until lifted.

    Only a legal reviewer independent of the case (``access.get_case_for_legal_hold``, which
    records a refusal), in any state of the case; ``case.legal_hold_set`` with the reason.
    """
    get_case_for_legal_hold(actor, case.pk)
    reason = _reason(reason, "placed")
    with transaction.atomic():
        case = locked(Case.objects).get(pk=case.pk)
        if case.legal_hold:
            raise InvalidTransition(
                f"The case is already under legal hold (since {case.legal_hold_at:%Y-%m-%d}).", case=case
            )
        case.legal_hold, case.legal_hold_reason = True, reason
        case.legal_hold_by, case.legal_hold_at = actor, timezone.now()
        case.save(update_fields=["legal_hold", "legal_hold_reason", "legal_hold_by", "legal_hold_at", "updated_at"])
        audit.record(
            action=Action.CASE_LEGAL_HOLD_SET,
            actor=actor,
            target=case,
            case_reference=case.reference,
            details={"reason": reason, "status": case.status},
        )
    return case


@retry_on_conflict
def case_legal_hold_lift(*, actor: User, case: Case, reason: str) -> Case:
    """Lift the legal hold of ``case``: two legal reviewers, each independent of the case.

    The first call *proposes* it (``case.legal_hold_lift_proposed``, with the reason): the hold
    stays in force, so the purge still sees the case as held. The same call by a *different*
    legal reviewer confirms it and lifts the hold (``case.legal_hold_lifted``, naming who proposed
    it, their reason and the confirmer's, and who placed the hold); if the case has been closed
    past retention, the next purge takes its evidence files. The proposer cannot confirm their
    own proposal. Each step raises a critical oversight alert in its transaction. One legal
    reviewer alone therefore cannot lift a hold just before a purge. A proposal not confirmed
    within ``HOLD_LIFT_PROPOSAL_HOURS`` has lapsed: the next call (by anyone, its proposer
    included) is a new proposal, recorded with the one it replaces.
    """
    from django.core.exceptions import PermissionDenied

    from . import oversight

    get_case_for_legal_hold(actor, case.pk)
    reason = _reason(reason, "lifted")
    with transaction.atomic():
        case = locked(Case.objects).select_related("legal_hold_by", "legal_hold_lift_by").get(pk=case.pk)
        if not case.legal_hold:
            raise InvalidTransition("The case is not under legal hold.", case=case)
        placed = {
            "placed_by": case.legal_hold_by.username if case.legal_hold_by else "",
            "placed_at": case.legal_hold_at.isoformat() if case.legal_hold_at else "",
            "placed_reason": case.legal_hold_reason,
        }
        proposer = case.legal_hold_lift_by
        if proposer is None or case.lift_proposal_lapsed():
            lapsed = (
                {"replaces": {"proposed_by": proposer.username, "proposed_at": case.legal_hold_lift_at.isoformat()}}
                if proposer is not None and case.legal_hold_lift_at
                else {}
            )
            case.legal_hold_lift_by, case.legal_hold_lift_at = actor, timezone.now()
            case.legal_hold_lift_reason = reason
            case.save(update_fields=[*LIFT_FIELDS, "updated_at"])
            event = audit.record(
                action=Action.CASE_LEGAL_HOLD_LIFT_PROPOSED,
                actor=actor,
                target=case,
                case_reference=case.reference,
                details={"reason": reason, "status": case.status, **placed, **lapsed},
            )
            oversight.raise_now(event)
            return case
        if proposer.pk == actor.pk:
            raise PermissionDenied(
                "You proposed lifting this hold: a second legal reviewer, independent of the case, confirms it."
            )
        proposal = {
            "proposed_by": proposer.username,
            "proposed_at": case.legal_hold_lift_at.isoformat() if case.legal_hold_lift_at else "",
            "proposal_reason": case.legal_hold_lift_reason,
        }
        case.legal_hold, case.legal_hold_reason, case.legal_hold_by, case.legal_hold_at = False, "", None, None
        case.legal_hold_lift_by, case.legal_hold_lift_at, case.legal_hold_lift_reason = None, None, ""
        case.save(update_fields=[*HOLD_FIELDS, *LIFT_FIELDS, "updated_at"])
        event = audit.record(
            action=Action.CASE_LEGAL_HOLD_LIFTED,
            actor=actor,
            target=case,
            case_reference=case.reference,
            details={"reason": reason, "status": case.status, **placed, **proposal},
        )
        oversight.raise_now(event)
    return case


HOLD_FIELDS = ("legal_hold", "legal_hold_reason", "legal_hold_by", "legal_hold_at")
LIFT_FIELDS = ("legal_hold_lift_by", "legal_hold_lift_at", "legal_hold_lift_reason")


# --- the purge ------------------------------------------------------------------------------


def evidence_purge_due(*, batch_size: int | None = None) -> int:
    """Purge the evidence files of every case closed for the retention period and not under legal hold.

    Per case and batch, one transaction: the case row is locked (a hold being placed waits, or
    the purge skips the case this run), the hold and the dates are checked again under the
    lock, the items are marked purged and one ``evidence.purged`` event per item is recorded
    (``record_many``, the chain head last). The files are deleted after commit: a rolled-back
    purge deletes nothing, and a file that could not be deleted is logged (its item says
    purged; the storage keeps an orphan, never the other way round). Safe to run twice or from
    two beats: an item is claimed only while not yet purged. Returns how many items it purged.
    """
    batch_size = batch_size or settings.EVIDENCE["PURGE_BATCH"]
    keep = retention()
    purged = 0
    for case_id in Case.objects.evidence_purge_due(timezone.now(), keep).order_by("pk").values_list("pk", flat=True):
        while True:
            done = _purge_batch(case_id, keep, batch_size)
            purged += done
            if done < batch_size:
                break
    return purged


def _purge_batch(case_id: int, keep: timedelta, batch_size: int) -> int:
    with transaction.atomic():
        case = locked(Case.objects, skip_locked=True).filter(pk=case_id).first()
        if case is None or not case.evidence_purge_due(timezone.now(), keep):
            return 0
        items = list(locked(Evidence.objects.stored(), skip_locked=True).filter(case=case).order_by("pk")[:batch_size])
        if not items:
            return 0
        now = timezone.now()
        for item in items:
            item.purged_at = now
            item.save(update_fields=["purged_at"])
        audit.record_many(
            (
                {
                    "action": Action.EVIDENCE_PURGED,
                    "target": item,
                    "case_reference": case.reference,
                    "details": {
                        "evidence": item.pk,
                        "sha256": item.sha256,
                        "size": item.size,
                        "kind": item.kind,
                        "closed_at": case.closed_at.isoformat(),
                        "retention_days": keep.days,
                    },
                }
                for item in items
            ),
            returning=False,
        )
        names = [item.stored_name for item in items]
        transaction.on_commit(lambda: _delete_files(names))
    return len(items)


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            custody.discard(name)
        except Exception:
            logger.exception("could not delete the purged evidence file %s; its item is marked purged", name)
