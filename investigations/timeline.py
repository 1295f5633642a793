"""The case timeline: the case's ledger events as sentences a person reads.

Built only from the fields named here (never a whole ``details`` dict), so it shows the team
no more than the case pages do: requests by number, decisions with the size of what was
approved, queries by category and row count, never subjects, account ids or protection.
Events the team is not shown at all (denials, lookups, permission rows, result and evidence
reads, custody checks that found nothing wrong) are left out by kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from accounts.models import User
from audit.events import Action
from audit.models import AuditEvent

from . import access
from .models import Case
from .models.request import APPROVING_OUTCOMES

Sentence = Callable[[str, AuditEvent], str]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _days(scope: dict) -> str:
    try:
        start, end = date.fromisoformat(scope["window_start"]), date.fromisoformat(scope["window_end"])
    except (KeyError, TypeError, ValueError):
        return ""
    return f" and {_plural((end - start).days + 1, 'day')}"


def _request_of(event: AuditEvent) -> str:
    return f"request #{event.details.get('request')}"


def _decision(who: str, event: AuditEvent) -> str:
    outcome = event.details.get("outcome", "")
    number = event.target_id
    scope = event.details.get("approved_scope") or {}
    if outcome == "approve_narrowed":
        subjects = len(scope.get("subjects") or [])
        return f"{who} approved request #{number}, narrowed to {_plural(subjects, 'subject')}{_days(scope)}"
    verbs = {"approve": "approved", "reject": "rejected", "return": "returned for changes"}
    return f"{who} {verbs.get(outcome, 'decided on')} request #{number}"


def _status(who: str, event: AuditEvent) -> str:
    moves = {"in_progress": "started", "done": "finished", "cancelled": "cancelled", "open": "reopened"}
    return f"{who} {moves.get(event.details.get('to'), 'moved')} the task “{event.details.get('title', '')}”"


def _query(who: str, event: AuditEvent) -> str:
    return f"{who}'s query #{event.target_id} returned {_plural(int(event.details.get('rows') or 0), 'row')}"


def _evidence(who: str, event: AuditEvent) -> str:
    details = event.details
    if details.get("kind") == "query_result":
        form = str(details.get("format", "")).upper()
        return f"{who} saved the result of query #{details.get('query')} as evidence ({form})"
    version = details.get("version") or 1
    what = f"version {version} of “{details.get('title', '')}”" if version > 1 else f"“{details.get('title', '')}”"
    return f"{who} added {what} as evidence (SHA-256 {str(details.get('sha256', ''))[:12]}…)"


# kind of event -> (filter group, sentence)
SENTENCES: dict[str, tuple[str, Sentence]] = {
    Action.CASE_OPENED: ("case", lambda who, e: f"{who} opened the case"),
    Action.CASE_UPDATED: ("case", lambda who, e: f"{who} edited the case ({', '.join(e.details.get('fields', []))})"),
    Action.CASE_APPROVED: ("case", lambda who, e: f"{who} approved the case"),
    Action.CASE_REJECTED: ("case", lambda who, e: f"{who} rejected the case: {e.details.get('reason', '')}"),
    Action.CASE_RESUBMITTED: ("case", lambda who, e: f"{who} sent the case back to legal"),
    Action.CASE_HELD: ("case", lambda who, e: f"{who} put the case on hold"),
    Action.CASE_RESUMED: ("case", lambda who, e: f"{who} resumed the case"),
    Action.CASE_CLOSED: ("case", lambda who, e: f"{who} closed the case"),
    Action.CASE_CLASSIFIED: ("case", lambda who, e: f"{who} changed the priority or tags"),
    Action.CASE_MEMBER_ADDED: ("team", lambda who, e: f"{who} added {e.details.get('user', '')} to the team"),
    Action.CASE_MEMBER_REMOVED: ("team", lambda who, e: f"{who} took {e.details.get('user', '')} off the team"),
    Action.REQUEST_CREATED: ("requests", lambda who, e: f"{who} drafted request #{e.target_id}"),
    Action.REQUEST_SUBMITTED: ("requests", lambda who, e: f"{who} submitted request #{e.target_id} to legal"),
    Action.REQUEST_WITHDRAWN: ("requests", lambda who, e: f"{who} withdrew request #{e.target_id}"),
    Action.REQUEST_LAPSED: ("requests", lambda who, e: f"Request #{e.target_id} lapsed undecided"),
    Action.DECISION_RECORDED: ("requests", _decision),
    Action.GRANT_ISSUED: ("grants", lambda who, e: f"Grant #{e.target_id} issued ({_request_of(e)})"),
    Action.GRANT_EXPIRED: ("grants", lambda who, e: f"Grant #{e.target_id} expired"),
    Action.GRANT_REVOKED: ("grants", lambda who, e: f"{who} revoked grant #{e.target_id}"),
    Action.QUERY_COMPLETED: ("queries", _query),
    Action.CASE_NOTE_ADDED: ("notes", lambda who, e: f"{who} added a note"),
    Action.CASE_NOTE_EDITED: ("notes", lambda who, e: f"{who} edited a note (version {e.details.get('version', '')})"),
    Action.TASK_CREATED: ("tasks", lambda who, e: f"{who} added the task “{e.details.get('title', '')}”"),
    Action.TASK_UPDATED: ("tasks", lambda who, e: f"{who} changed the task “{e.details.get('title', '')}”"),
    Action.TASK_STATUS_CHANGED: ("tasks", _status),
    Action.EVIDENCE_ADDED: ("evidence", _evidence),
    Action.EVIDENCE_RELEASED: (
        "evidence",
        lambda who, e: f"{who} released evidence #{e.target_id} outside the case to {e.details.get('recipient', '')}",
    ),
    Action.EVIDENCE_INTEGRITY_FAILED: (
        "evidence",
        lambda who, e: f"The custody check found evidence #{e.target_id} {e.details.get('result', 'changed')}",
    ),
    Action.EVIDENCE_PURGED: (
        "evidence",
        lambda who, e: (
            f"The file of evidence #{e.target_id} was purged after the retention period (record and hash kept)"
        ),
    ),
    Action.CASE_LEGAL_HOLD_SET: ("case", lambda who, e: f"{who} placed the case under legal hold"),
    Action.CASE_LEGAL_HOLD_LIFT_PROPOSED: ("case", lambda who, e: f"{who} proposed lifting the legal hold"),
    Action.CASE_LEGAL_HOLD_LIFTED: (
        "case",
        lambda who, e: f"{who} lifted the legal hold"
        + (f" (proposed by {e.details['proposed_by']})" if e.details.get("proposed_by") else ""),
    ),
}
KINDS = ["case", "team", "requests", "grants", "queries", "tasks", "notes", "evidence"]


@dataclass(frozen=True)
class Entry:
    seq: int
    at: datetime
    kind: str
    person: str
    sentence: str


def case_events(case: Case, *, kind: str = "", person: str = "", viewer: User | None = None):
    """The ledger events of ``case`` that the timeline tells, oldest first, filtered.

    With ``viewer``, only what they may see now: an approval of a request whose resolution is
    withheld from them (``access.withholds_resolution``: the case team, until the request is
    approved) is left out, as the request pages leave it out (``access.decisions_shown_to``):
    an approval that did not decide the request would tell the team the protected policy
    applies. Without ``viewer`` (the auditors' second view of their ledger), every event.
    """
    actions = [action for action, (group, _) in SENTENCES.items() if not kind or group == kind]
    events = AuditEvent.objects.filter(case_reference=case.reference, action__in=actions).order_by("seq")
    if viewer is not None:
        withheld = [
            str(data_request.pk)
            for data_request in case.requests.all()
            if access.withholds_resolution(viewer, data_request)
        ]
        events = events.exclude(
            action=Action.DECISION_RECORDED, target_id__in=withheld, details__outcome__in=sorted(APPROVING_OUTCOMES)
        )
    return events.filter(actor_username=person) if person else events


def entry(event: AuditEvent) -> Entry:
    group, sentence = SENTENCES[event.action]
    who = event.actor_username or "Custos"
    return Entry(seq=event.seq, at=event.occurred_at, kind=group, person=who, sentence=sentence(who, event) + ".")


def people_in(case: Case, viewer: User | None = None) -> list[str]:
    """Who appears in the case's timeline as ``viewer`` sees it (for the person filter)."""
    names = case_events(case, viewer=viewer).exclude(actor_username="").values_list("actor_username", flat=True)
    return sorted(set(names))
