"""Oversight: alerts derived from the audit trail, and the scope-diff report of ended grants.

The contract with the rest of the application is the ledger. The scan reads audit events
after a cursor and applies one detector per kind, so nothing can read data, or ask to,
without raising its alert unless it also bypasses the ledger. Events the scan relies on:

- ``subject.lookup``: ``details.identifiers`` (a draft resolving what was typed), counted per user
- ``request.submitted``: ``details.subjects`` (account ids), ``details.protected`` (categories)
- ``decision.recorded``: ``details.outcome``, ``details.protected``, ``details.subjects``
- ``query.requested`` / ``query.denied`` (``details.stage`` "submit" is the user's own attempt)
- ``query.tripwire``: target the query; ``details.dropped_rows``, ``protected_accounts``, ``grant_id``
- ``grant.expired`` / ``grant.revoked``: the grant ended; its scope-diff report is written
- ``case.member_added`` / ``case.member_removed`` with ``details.decision_pending`` (``case``,
  ``requests``): the team changed while legal had a decision to make
- ``protected_subject.weakening_proposed`` / ``.weakening_confirmed``: ``details.account_id``,
  ``kind``, ``category_before``, ``category_after``, ``proposed_by`` (raised at once by the
  registry actions through ``raise_now``; the scan only catches one raised nowhere else)

Why reading after a cursor misses nothing: the ledger hands out ``seq`` under the chain-head
row lock, held until the appending transaction commits, so events become visible in ``seq``
order and a committed event can never appear behind the cursor later.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

import audit
from accounts.models import User
from audit import sealer
from audit.access import is_auditor
from audit.events import Action
from audit.models import AuditEvent

from .. import enqueue, notify
from ..errors import InvalidTransition
from ..models import (
    ID_MAX,
    Alert,
    AlertKind,
    AlertSeverity,
    Case,
    CaseMember,
    DataPullRequest,
    DataQuery,
    DecisionOutcome,
    Grant,
    GrantReport,
    NotificationKind,
    OversightCursor,
    QueryStatus,
    SubjectMention,
)
from ..models.case import TEXT_MAX
from ..models.request import APPROVING_OUTCOMES
from . import notification
from .locks import locked, retry_on_conflict

logger = logging.getLogger(__name__)

REQUEST_TYPE = "investigations.datapullrequest"
QUERY_TYPE = "investigations.dataquery"
GRANT_TYPE = "investigations.grant"
USER_TYPE = "accounts.user"
# An alert not emailed this long after it was raised is retried by a later scan (the first
# try runs right after the scan commits).
EMAIL_RETRY_AFTER = timedelta(minutes=5)


def rules() -> dict:
    return settings.CUSTOS["OVERSIGHT"]


@dataclass
class Draft:
    """An alert a detector wants raised; ``_raise`` checks the ids and writes it."""

    kind: str
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    case_id: int | None = None
    request_id: int | None = None
    grant_id: int | None = None
    query_id: int | None = None
    user_id: int | None = None


@dataclass
class Scan:
    events: int = 0
    alerts: list[int] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)
    last_seq: int = 0


# --- reading events ----------------------------------------------------------------------


def _int(value: Any) -> int | None:
    try:
        number = int(str(value), 10)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= ID_MAX else None


def _target(event: AuditEvent, target_type: str) -> int | None:
    return _int(event.target_id) if event.target_type == target_type else None


def _subjects(event: AuditEvent) -> list[int]:
    details = event.details or {}
    named = details.get("subjects")
    if named is None:
        named = (details.get("scope") or {}).get("subjects", [])
    return sorted({number for number in map(_int, named or []) if number is not None})


def _case_id(event: AuditEvent) -> int | None:
    if not event.case_reference:
        return None
    return Case.objects.filter(reference=event.case_reference).values_list("pk", flat=True).first()


def _who(event: AuditEvent) -> str:
    return event.actor_username or "the system"


def _accounts(numbers) -> str:
    return ", ".join(str(number) for number in sorted(numbers))


# --- detectors: requests and decisions ---------------------------------------------------


def _escalations(event: AuditEvent) -> list[str]:
    """Why a request falls under the protected-request policy: the registry categories it
    touches, and the data categories a purpose limit escalated (``purpose limit: location``)."""
    labels = [str(category) for category in event.details.get("protected") or []]
    labels += [f"purpose limit: {category}" for category in event.details.get("purpose_limit") or []]
    return labels


def _on_request_submitted(event: AuditEvent) -> list[Draft]:
    request_id = _target(event, REQUEST_TYPE)
    if request_id is None or not DataPullRequest.objects.filter(pk=request_id).exists():
        return []
    case_id, subjects = _case_id(event), _subjects(event)
    base = {"case_id": case_id, "request_id": request_id, "user_id": event.actor_id}
    drafts = []
    protected = _escalations(event)
    if protected:
        drafts.append(
            Draft(
                kind=AlertKind.PROTECTED_REQUEST_SUBMITTED,
                severity=AlertSeverity.WARNING,
                summary=f"{_who(event)} submitted request {request_id} on {event.case_reference}, "
                f"naming a protected subject ({', '.join(protected)}).",
                details={"protected": protected, "subjects": subjects},
                **base,
            )
        )
    if case_id is not None and subjects:
        drafts += _named_in_other_cases(event, subjects, base)
        drafts += _refiled_after_rejection(event, subjects, base)
        _index_mentions(event, subjects, base)
    return drafts


def _named_in_other_cases(event: AuditEvent, subjects: list[int], base: dict) -> list[Draft]:
    """ "Unrelated" means another case: any earlier submitted request on a different case."""
    if Alert.objects.filter(kind=AlertKind.SUBJECT_IN_UNRELATED_CASES, request_id=base["request_id"]).exists():
        return []  # a resubmission after "return for changes" was already flagged
    earlier = SubjectMention.objects.filter(account_id__in=subjects, submitted_seq__lt=event.seq).exclude(
        case_id=base["case_id"]
    )
    matches = list(earlier.values_list("account_id", "case__reference", "request_id"))
    if not matches:
        return []
    accounts = sorted({account for account, _, _ in matches})
    cases = sorted({reference for _, reference, _ in matches})
    return [
        Draft(
            kind=AlertKind.SUBJECT_IN_UNRELATED_CASES,
            severity=AlertSeverity.WARNING,
            summary=f"Request {base['request_id']} on {event.case_reference} names account(s) "
            f"{_accounts(accounts)}, already requested on {', '.join(cases)}.",
            details={
                "accounts": accounts,
                "other_cases": cases,
                "other_requests": sorted({request for _, _, request in matches}),
            },
            **base,
        )
    ]


def _refiled_after_rejection(event: AuditEvent, subjects: list[int], base: dict) -> list[Draft]:
    """A rejected request's subjects asked for again by the same requester (any case) or on the same case."""
    if Alert.objects.filter(kind=AlertKind.REFILED_AFTER_REJECTION, request_id=base["request_id"]).exists():
        return []
    same_people = Q(case_id=base["case_id"])
    if event.actor_id is not None:
        same_people |= Q(requested_by_id=event.actor_id)
    rejected = (
        SubjectMention.objects.filter(same_people, account_id__in=subjects, rejected_seq__lt=event.seq)
        .exclude(request_id=base["request_id"])
        .values_list("account_id", "request_id")
    )
    matches = list(rejected)
    if not matches:
        return []
    accounts = sorted({account for account, _ in matches})
    requests = sorted({request for _, request in matches})
    return [
        Draft(
            kind=AlertKind.REFILED_AFTER_REJECTION,
            severity=AlertSeverity.WARNING,
            summary=f"Request {base['request_id']} on {event.case_reference} by {_who(event)} names account(s) "
            f"{_accounts(accounts)} of rejected request(s) {_accounts(requests)}.",
            details={"accounts": accounts, "rejected_requests": requests},
            **base,
        )
    ]


def _index_mentions(event: AuditEvent, subjects: list[int], base: dict) -> None:
    requester = base["user_id"] if User.objects.filter(pk=base["user_id"]).exists() else None
    SubjectMention.objects.bulk_create(
        [
            SubjectMention(
                account_id=account,
                request_id=base["request_id"],
                case_id=base["case_id"],
                requested_by_id=requester,
                submitted_seq=event.seq,
            )
            for account in subjects
        ],
        ignore_conflicts=True,
    )


def _on_decision(event: AuditEvent) -> list[Draft]:
    request_id = _target(event, REQUEST_TYPE)
    if request_id is None:
        return []
    outcome = str(event.details.get("outcome", ""))
    if outcome == DecisionOutcome.REJECT:
        SubjectMention.objects.filter(request_id=request_id, rejected_seq__isnull=True).update(rejected_seq=event.seq)
    protected = _escalations(event)
    if not protected or not DataPullRequest.objects.filter(pk=request_id).exists():
        return []
    return [
        Draft(
            kind=AlertKind.PROTECTED_REQUEST_DECIDED,
            severity=AlertSeverity.CRITICAL if outcome in APPROVING_OUTCOMES else AlertSeverity.INFO,
            summary=f"{_who(event)} decided '{outcome}' on protected request {request_id} "
            f"on {event.case_reference} ({', '.join(protected)}).",
            details={"outcome": outcome, "protected": protected, "subjects": _subjects(event)},
            case_id=_case_id(event),
            request_id=request_id,
            user_id=event.actor_id,
        )
    ]


# --- detectors: queries ------------------------------------------------------------------


def _query_base(event: AuditEvent) -> dict:
    query_id = _target(event, QUERY_TYPE)
    grant_id = _int((event.details or {}).get("grant") or (event.details or {}).get("grant_id"))
    return {"case_id": _case_id(event), "query_id": query_id, "grant_id": grant_id, "user_id": event.actor_id}


def _on_query_requested(event: AuditEvent) -> list[Draft]:
    return _off_hours(event, _query_base(event))


def _on_query_denied(event: AuditEvent) -> list[Draft]:
    if (event.details or {}).get("stage", "submit") != "submit":
        return []  # refused at run time (revoked while queued): not the user's own attempt
    base = _query_base(event)
    return _repeated_denials(event, base) + _off_hours(event, base)


def _repeated_denials(event: AuditEvent, base: dict) -> list[Draft]:
    """N denied attempts by one user within W minutes: one alert per user per window."""
    if event.actor_id is None:
        return []
    since = event.occurred_at - timedelta(minutes=rules()["DENIAL_WINDOW_MINUTES"])
    denials = AuditEvent.objects.filter(
        action=Action.QUERY_DENIED, actor_id=event.actor_id, occurred_at__gt=since, seq__lte=event.seq
    ).filter(details__stage="submit")
    found = list(denials.values_list("target_id", "details__reason"))
    if len(found) < rules()["REPEATED_DENIALS"]:
        return []
    if Alert.objects.filter(kind=AlertKind.REPEATED_DENIALS, user_id=event.actor_id, event_at__gt=since).exists():
        return []
    return [
        Draft(
            kind=AlertKind.REPEATED_DENIALS,
            severity=AlertSeverity.WARNING,
            summary=f"{_who(event)} had {len(found)} query attempts denied within "
            f"{rules()['DENIAL_WINDOW_MINUTES']} minutes.",
            details={
                "denials": len(found),
                "window_minutes": rules()["DENIAL_WINDOW_MINUTES"],
                "queries": sorted(number for number in map(_int, (target for target, _ in found)) if number),
                "reasons": dict(Counter(str(reason) for _, reason in found)),
            },
            **base,
        )
    ]


def is_working_time(moment: datetime) -> bool:
    """Whether ``moment`` falls inside the configured working hours and days."""
    local = moment.astimezone(ZoneInfo(rules()["TIME_ZONE"]))
    start, end = (time.fromisoformat(value) for value in rules()["WORKING_HOURS"])
    return local.weekday() in set(rules()["WORKING_DAYS"]) and start <= local.time() < end


def _off_hours(event: AuditEvent, base: dict) -> list[Draft]:
    """A query asked for outside working hours: one alert per user and case per quiet period."""
    if is_working_time(event.occurred_at) or event.actor_id is None:
        return []
    since = event.occurred_at - timedelta(hours=rules()["OFF_HOURS_GROUP_HOURS"])
    earlier = Alert.objects.filter(
        kind=AlertKind.OFF_HOURS_QUERY, user_id=event.actor_id, case_id=base["case_id"], event_at__gt=since
    )
    if earlier.exists():
        return []
    local = event.occurred_at.astimezone(ZoneInfo(rules()["TIME_ZONE"]))
    when = f"{local:%a %Y-%m-%d %H:%M} {rules()['TIME_ZONE']}"
    return [
        Draft(
            kind=AlertKind.OFF_HOURS_QUERY,
            severity=AlertSeverity.INFO,
            summary=f"{_who(event)} asked for query {base['query_id']} on {event.case_reference} at {when}, "
            "outside working hours.",
            details={"local_time": when, "action": event.action},
            **base,
        )
    ]


def _on_tripwire(event: AuditEvent) -> list[Draft]:
    base = _query_base(event)
    if base["user_id"] is None and base["query_id"]:
        base["user_id"] = DataQuery.objects.filter(pk=base["query_id"]).values_list("user_id", flat=True).first()
    details = event.details or {}
    accounts = sorted(number for number in map(_int, details.get("protected_accounts") or []) if number)
    others = _int(details.get("other_accounts")) or 0
    about = f"protected account(s) {_accounts(accounts)}" if accounts else "account(s)"
    return [
        Draft(
            kind=AlertKind.TRIPWIRE,
            # Any withheld row is a catalogue or resolution fault; rows of a protected account are the worst case.
            severity=AlertSeverity.CRITICAL if accounts else AlertSeverity.WARNING,
            summary=f"Query {base['query_id']} on {event.case_reference}: {details.get('dropped_rows', '?')} row(s) "
            f"of {about} outside the grant were dropped"
            + (f" ({others} other account(s))." if accounts and others else "."),
            details={
                "dropped_rows": details.get("dropped_rows"),
                "protected_accounts": accounts,
                "other_accounts": others,
                "category": details.get("category"),
            },
            **base,
        )
    ]


# --- detectors: the ledger stream ---------------------------------------------------------

STREAM_SILENCING = {
    Action.STREAM_PAUSED: "paused",
    Action.STREAM_DELETED: "deleted",
    Action.STREAM_CHANGED: "changed",
}


def _on_stream_silenced(event: AuditEvent) -> list[Draft]:
    """A stream paused, deleted, or pointed or filtered elsewhere: what an insider would do first."""
    details = event.details or {}
    verb = STREAM_SILENCING[event.action]
    if verb == "changed" and not details.get("silencing"):
        return []
    changed = f" ({', '.join(map(str, details.get('changed') or []))})" if verb == "changed" else ""
    reason = f": {details['reason']}" if details.get("reason") else ""
    return [
        Draft(
            kind=AlertKind.STREAM_SILENCED,
            severity=AlertSeverity.WARNING if verb == "changed" else AlertSeverity.CRITICAL,
            summary=f"{_who(event)} {verb} ledger stream '{details.get('name', '?')}'{changed}{reason}.",
            details={key: details.get(key) for key in ("name", "kind", "url", "action_prefixes", "changed", "reason")},
            user_id=event.actor_id,
        )
    ]


def _on_stream_failing(event: AuditEvent) -> list[Draft]:
    details = event.details or {}
    return [
        Draft(
            kind=AlertKind.STREAM_FAILING,
            severity=AlertSeverity.CRITICAL,
            summary=f"Ledger stream '{details.get('name', '?')}' has failed since {details.get('failing_since')}; "
            f"{details.get('backlog', '?')} event(s) waiting. Last error: {details.get('error', '')}",
            details={key: details.get(key) for key in ("name", "url", "failing_since", "failures", "error", "backlog")},
        )
    ]


# --- detectors: the team ------------------------------------------------------------------


def _on_team_change(event: AuditEvent) -> list[Draft]:
    """A team changed while the case or one of its requests awaited legal: whoever joined or
    left is never independent of it (``access.involvement_in``), but oversight should ask why."""
    pending = (event.details or {}).get("decision_pending")
    if not pending:
        return []
    details = event.details
    joined = event.action == Action.CASE_MEMBER_ADDED
    awaiting = []
    if pending.get("case"):
        awaiting.append("the case's approval")
    requests = sorted(number for number in map(_int, pending.get("requests") or []) if number)
    if requests:
        awaiting.append(f"request(s) {_accounts(requests)}")
    return [
        Draft(
            kind=AlertKind.TEAM_CHANGED_PENDING_DECISION,
            severity=AlertSeverity.WARNING,
            summary=f"{_who(event)} {'added' if joined else 'removed'} {details.get('user', '?')} "
            f"{'to' if joined else 'from'} the team of {event.case_reference} while {' and '.join(awaiting)} "
            "awaited a legal decision.",
            details={
                "change": "added" if joined else "removed",
                "member": details.get("user"),
                "member_id": _int(details.get("user_id")),
                "decision_pending": {"case": bool(pending.get("case")), "requests": requests},
            },
            case_id=_case_id(event),
            request_id=requests[0] if len(requests) == 1 else None,
            user_id=event.actor_id,
        )
    ]


# --- detectors: administrators ---------------------------------------------------------------

USER_TYPE = "accounts.user"


def _on_privileges_changed(event: AuditEvent) -> list[Draft]:
    """Staff opens the admin (users, roles, the registry); superuser every model permission."""
    granted = [str(field) for field in (event.details or {}).get("granted", [])]
    if not granted:
        return []
    user_id = _target(event, USER_TYPE)
    names = " and ".join("superuser" if field == "is_superuser" else "staff" for field in granted)
    username = (event.details or {}).get("username") or f"user {user_id}"
    return [
        Draft(
            kind=AlertKind.PRIVILEGE_GRANTED,
            severity=AlertSeverity.CRITICAL if "is_superuser" in granted else AlertSeverity.WARNING,
            summary=f"{_who(event)} granted {names} status to {username}.",
            details={"granted": granted, "username": username},
            user_id=user_id,
        )
    ]


def _on_subject_lookup(event: AuditEvent) -> list[Draft]:
    """More than N identifier lookups by one user within W minutes: one alert per user per window.

    Each draft saved resolves its identifiers (``subject.lookup`` with ``identifiers``); the
    re-check of links at submission (``accounts``) is not the user's probing. Lookups stay on
    the ledger whatever becomes of their drafts, so withdrawn or abandoned drafts count.
    """
    if event.actor_id is None or "identifiers" not in (event.details or {}):
        return []
    since = event.occurred_at - timedelta(minutes=rules()["LOOKUP_WINDOW_MINUTES"])
    lookups = AuditEvent.objects.filter(
        action=Action.SUBJECT_LOOKUP, actor_id=event.actor_id, occurred_at__gt=since, seq__lte=event.seq
    ).filter(details__has_key="identifiers")
    found = list(lookups.values_list("case_reference", flat=True))
    if len(found) <= rules()["LOOKUP_PROBES"]:
        return []
    if Alert.objects.filter(kind=AlertKind.IDENTIFIER_PROBING, user_id=event.actor_id, event_at__gt=since).exists():
        return []
    cases = sorted({reference for reference in found if reference})
    return [
        Draft(
            kind=AlertKind.IDENTIFIER_PROBING,
            severity=AlertSeverity.WARNING,
            summary=f"{_who(event)} looked up subjects {len(found)} times within "
            f"{rules()['LOOKUP_WINDOW_MINUTES']} minutes (cases {', '.join(cases) or 'none'}).",
            details={"lookups": len(found), "window_minutes": rules()["LOOKUP_WINDOW_MINUTES"], "cases": cases},
            case_id=_case_id(event),
            user_id=event.actor_id,
        )
    ]


# --- detectors: the protected-subject registry ------------------------------------------------

REGISTRY_WEAKENING = {
    Action.PROTECTED_SUBJECT_WEAKENING_PROPOSED: (AlertKind.REGISTRY_WEAKENING_PROPOSED, "proposed"),
    Action.PROTECTED_SUBJECT_WEAKENING_CONFIRMED: (AlertKind.REGISTRY_WEAKENING_CONFIRMED, "confirmed"),
}


def _on_registry_weakening(event: AuditEvent) -> list[Draft]:
    """Weakening the registry, proposed or confirmed: always critical. The action raises it at
    once (``raise_now``); the scan only catches an event written without it."""
    kind, verb = REGISTRY_WEAKENING[event.action]
    if Alert.objects.filter(kind=kind, event_seq=event.seq).exists():
        return []
    details = event.details or {}
    account, before, after = details.get("account_id"), details.get("category_before"), details.get("category_after")
    change = f"moving account {account} from {before} to {after}" if after else f"removing account {account} ({before})"
    summary = f"{_who(event)} {verb} {change} on the protected-subject registry"
    if verb == "confirmed":
        summary += f", proposed by {details.get('proposed_by', '?')}"
    return [
        Draft(
            kind=kind,
            severity=AlertSeverity.CRITICAL,
            summary=f"{summary}: {details.get('reason', '')}",
            details={
                name: details.get(name)
                for name in ("proposal", "kind", "account_id", "category_before", "category_after", "proposed_by")
            }
            | {"protected_until": details.get("protected_until")},
            user_id=event.actor_id,
        )
    ]


LEGAL_HOLD_LIFT = {
    Action.CASE_LEGAL_HOLD_LIFT_PROPOSED: (AlertKind.LEGAL_HOLD_LIFT_PROPOSED, "proposed lifting"),
    Action.CASE_LEGAL_HOLD_LIFTED: (AlertKind.LEGAL_HOLD_LIFTED, "lifted"),
}


def _on_legal_hold_lift(event: AuditEvent) -> list[Draft]:
    """Lifting a legal hold, proposed or done: critical (a closed case past retention loses its
    evidence files at the next purge). The action raises it at once (``raise_now``); the scan
    only catches an event written without it."""
    kind, verb = LEGAL_HOLD_LIFT[event.action]
    if Alert.objects.filter(kind=kind, event_seq=event.seq).exists():
        return []
    details = event.details or {}
    summary = f"{_who(event)} {verb} the legal hold of {event.case_reference}"
    if details.get("proposed_by"):
        summary += f", proposed by {details['proposed_by']}"
    return [
        Draft(
            kind=kind,
            severity=AlertSeverity.CRITICAL,
            summary=f"{summary}: {details.get('reason', '')}",
            details={name: details.get(name) for name in ("reason", "status", "placed_by", "proposed_by")},
            case_id=_case_id(event),
            user_id=event.actor_id,
        )
    ]


# --- detectors: sign-in -------------------------------------------------------------------


def _on_locked_out(event: AuditEvent) -> list[Draft]:
    """A burst of failed sign-ins locked a username or an address (``auth.locked_out``): someone
    may be guessing a password. The target is the account when the username exists."""
    details = event.details or {}
    username, address = details.get("username") or "?", details.get("address") or event.ip or "?"
    return [
        Draft(
            kind=AlertKind.SIGN_IN_LOCKED,
            severity=AlertSeverity.WARNING,
            summary=f"Sign-in locked after {details.get('failures', '?')} failed attempts for username "
            f"'{username}' or from address {address}.",
            details={"username": username, "address": address, "failures": details.get("failures")},
            user_id=_int(event.target_id) if event.target_type == USER_TYPE else None,
        )
    ]


def _on_second_factor_reset(event: AuditEvent) -> list[Draft]:
    """A user's second factor was reset by staff (``user.second_factor_reset``): the account can
    be enrolled anew by whoever signs in next with its password, so oversight looks at who asked
    for it and why. A staff account's reset is critical."""
    details = event.details or {}
    username = details.get("username") or "?"
    by = details.get("proposed_by") or _who(event)
    if details.get("confirmed_by"):
        by = f"{by}, confirmed by {details['confirmed_by']}"
    return [
        Draft(
            kind=AlertKind.SECOND_FACTOR_RESET,
            severity=AlertSeverity.CRITICAL if details.get("is_staff") else AlertSeverity.WARNING,
            summary=f"Second factor of {username} reset by {by}: {details.get('reason', '')}",
            details={
                name: details.get(name) for name in ("username", "is_staff", "proposed_by", "confirmed_by", "reason")
            },
            user_id=_int(event.target_id) if event.target_type == USER_TYPE else None,
        )
    ]


# --- detectors: evidence custody -----------------------------------------------------------


def _on_evidence_integrity(event: AuditEvent) -> list[Draft]:
    """Stored evidence no longer matches the hash taken at upload, or is gone
    (``evidence.integrity_failed``, from the periodic re-hash). Raised at once by the check
    (``raise_now``); again only when an item breaks in a new way (``details.previous``)."""
    details = event.details or {}
    result, previous = details.get("result"), details.get("previous")
    if result == previous or Alert.objects.filter(kind=AlertKind.EVIDENCE_INTEGRITY, event_seq=event.seq).exists():
        return []
    what = "is missing from storage" if result == "missing" else "no longer matches the hash taken at upload"
    return [
        Draft(
            kind=AlertKind.EVIDENCE_INTEGRITY,
            severity=AlertSeverity.CRITICAL,
            summary=f"Evidence item {details.get('evidence')} on {event.case_reference} {what}.",
            details={
                name: details.get(name)
                for name in ("evidence", "result", "expected_sha256", "found_sha256", "expected_size", "found_size")
            },
            case_id=Case.objects.filter(reference=event.case_reference).values_list("pk", flat=True).first(),
        )
    ]


# --- detectors: single sign-on ----------------------------------------------------------------

# Refused single sign-ons that oversight hears about (accounts.sso): the identity provider
# asserting roles that break the separation of duties, a user deactivated in Custos who is still
# let in at the provider, and a provider identity naming a local account (a takeover attempt, or
# a link staff have not made). An unknown identity refused before provisioning is only recorded.
SSO_REFUSALS = {
    "role_conflict": (
        AlertSeverity.CRITICAL,
        "the identity provider asserted roles that break the separation of duties ({roles})",
    ),
    "deactivated": (
        AlertSeverity.WARNING,
        "the account is deactivated in Custos but still active at the identity provider",
    ),
    "identity_taken": (
        AlertSeverity.WARNING,
        "the provider's username or e-mail names an existing Custos account ({email})",
    ),
}


def _on_sso_refused(event: AuditEvent) -> list[Draft]:
    details = event.details or {}
    reason = details.get("reason")
    if reason not in SSO_REFUSALS:
        return []
    severity, why = SSO_REFUSALS[reason]
    username = str(details.get("username") or "?")[:60]
    roles = ", ".join(map(str, details.get("roles_claimed") or [])) or "none"
    why = why.format(roles=roles[:80], email=str(details.get("email") or "no e-mail")[:80])
    return [
        Draft(
            kind=AlertKind.SSO_REFUSED,
            severity=severity,
            summary=f"Single sign-on refused for '{username}' (sub {str(details.get('sub'))[:40]}): {why}.",
            details={name: details.get(name) for name in ("reason", "sub", "username", "email", "roles_claimed")},
            user_id=_int(event.target_id) if event.target_type == USER_TYPE else None,
        )
    ]


def _on_break_glass(event: AuditEvent) -> list[Draft]:
    """The break-glass account signed in with its password: always critical, whatever the reason."""
    details = event.details or {}
    username, address = details.get("username") or "?", event.ip or "?"
    return [
        Draft(
            kind=AlertKind.BREAK_GLASS_SIGN_IN,
            severity=AlertSeverity.CRITICAL,
            summary=f"The break-glass account '{username}' signed in from {address} ({details.get('via') or '?'}).",
            details={"username": username, "address": address, "via": details.get("via")},
            user_id=event.actor_id,
        )
    ]


def raise_now(event: AuditEvent) -> list[Alert]:
    """Raise the alerts ``event`` calls for inside the caller's transaction, without waiting for
    the scan, and email them on commit. For changes that must be loud at once (the registry)."""
    raised = [_raise(event, draft) for draft in DETECTORS[event.action](event)]
    # The caller already holds the chain head (it recorded ``event``): its alert.raised events follow.
    audit.record_many([entry for _, entry in raised], returning=False)
    alerts = [alert for alert, _ in raised]
    transaction.on_commit(partial(email_alerts, [alert.pk for alert in alerts]))
    return alerts


DETECTORS = {
    Action.PROTECTED_SUBJECT_WEAKENING_PROPOSED: _on_registry_weakening,
    Action.PROTECTED_SUBJECT_WEAKENING_CONFIRMED: _on_registry_weakening,
    Action.CASE_MEMBER_ADDED: _on_team_change,
    Action.CASE_MEMBER_REMOVED: _on_team_change,
    Action.AUTH_LOCKED_OUT: _on_locked_out,
    Action.USER_SECOND_FACTOR_RESET: _on_second_factor_reset,
    Action.CASE_LEGAL_HOLD_LIFT_PROPOSED: _on_legal_hold_lift,
    Action.CASE_LEGAL_HOLD_LIFTED: _on_legal_hold_lift,
    Action.AUTH_SSO_REFUSED: _on_sso_refused,
    Action.AUTH_BREAK_GLASS: _on_break_glass,
    Action.STREAM_PAUSED: _on_stream_silenced,
    Action.STREAM_DELETED: _on_stream_silenced,
    Action.STREAM_CHANGED: _on_stream_silenced,
    Action.STREAM_FAILING: _on_stream_failing,
    Action.USER_PRIVILEGES_CHANGED: _on_privileges_changed,
    Action.SUBJECT_LOOKUP: _on_subject_lookup,
    Action.REQUEST_SUBMITTED: _on_request_submitted,
    Action.DECISION_RECORDED: _on_decision,
    Action.QUERY_REQUESTED: _on_query_requested,
    Action.QUERY_DENIED: _on_query_denied,
    Action.QUERY_TRIPWIRE: _on_tripwire,
    Action.EVIDENCE_INTEGRITY_FAILED: _on_evidence_integrity,
}
GRANT_ENDINGS = {Action.GRANT_EXPIRED: "expired", Action.GRANT_REVOKED: "revoked"}


# --- raising alerts ----------------------------------------------------------------------


def _existing(model, pk: int | None) -> int | None:
    return pk if pk is not None and model.objects.filter(pk=pk).exists() else None


def _raise(event: AuditEvent, draft: Draft) -> tuple[Alert, dict]:
    """Write one alert; return it and its ``alert.raised`` event. Ids that name nothing are dropped, not trusted."""
    alert = Alert.objects.create(
        kind=draft.kind,
        severity=draft.severity,
        event_seq=event.seq,
        event_at=event.occurred_at,
        case_id=_existing(Case, draft.case_id),
        request_id=_existing(DataPullRequest, draft.request_id),
        grant_id=_existing(Grant, draft.grant_id),
        query_id=_existing(DataQuery, draft.query_id),
        user_id=_existing(User, draft.user_id),
        summary=draft.summary[:300],
        details=draft.details,
    )
    notification.notify(
        actor=None,
        recipients=notify.auditors(),
        kind=NotificationKind.ALERT_RAISED,
        text=f"{alert.get_severity_display()} alert: {alert.summary}",
        link=reverse("investigations:alert_detail", args=[alert.pk]),
    )
    raised = {
        "action": Action.ALERT_RAISED,
        "target": alert,
        "case_reference": event.case_reference,
        "details": {"kind": draft.kind, "severity": draft.severity, "event_seq": event.seq},
    }
    return alert, raised


def _process(event: AuditEvent, scan: Scan, ledger: list[dict]) -> None:
    detector = DETECTORS.get(event.action)
    if detector is not None:
        for draft in detector(event):
            alert, raised = _raise(event, draft)
            scan.alerts.append(alert.pk)
            ledger.append(raised)
    if event.action in GRANT_ENDINGS:
        written = _grant_report(event)
        if written is not None:
            scan.reports.append(written[0].pk)
            ledger.append(written[1])


@retry_on_conflict
def _scan_batch(batch_size: int) -> Scan:
    """One batch in one transaction, in the lock order of docs/design.md.

    The cursor row, then the rows written, and the chain head last (one ``record_many``
    for the batch's events): the scan never holds the head while it waits for a row that a
    decision holds.
    """
    OversightCursor.objects.bulk_create([OversightCursor(pk=1)], ignore_conflicts=True)
    scan = Scan()
    ledger: list[dict] = []
    with transaction.atomic():
        cursor = locked(OversightCursor.objects).get(pk=1)
        # Sealed events only: they are a prefix of the ledger that only grows (audit.sealer),
        # so no event can commit later behind the cursor.
        after = AuditEvent.objects.filter(seq__gt=cursor.last_seq, hash__isnull=False)
        events = list(after.order_by("seq")[:batch_size])
        for event in events:
            _process(event, scan, ledger)
        if events:
            cursor.last_seq = events[-1].seq
            cursor.save(update_fields=["last_seq", "updated_at"])
        audit.record_many(ledger, returning=False)
        scan.events, scan.last_seq = len(events), cursor.last_seq
        unsent = _unsent_alerts()
        transaction.on_commit(partial(email_alerts, [*scan.alerts, *unsent]))
    return scan


def alerts_scan(*, batch_size: int | None = None) -> Scan:
    """Raise the alerts and write the reports that new audit events call for.

    Race: the cursor row is locked (``SELECT ... FOR UPDATE``) for the whole batch, so two
    scans are serialised and the second starts where the first committed; UNIQUE(kind,
    event_seq) is a second wall. The alerts, their ``alert.raised`` events and the cursor
    move commit together: a scan that fails rolls all back and leaves the cursor unmoved.
    Emails go out after commit. Batches of ``SCAN_BATCH`` events, one transaction each.

    The scan reads sealed events only, so it seals what has committed first; then it alerts
    if an event has waited for the sealer longer than ``AUDIT_SEAL_MAX_AGE_SECONDS``.
    """
    batch_size = batch_size or rules()["SCAN_BATCH"]
    sealer.seal_first()
    total = Scan()
    while True:
        scan = _scan_batch(batch_size)
        total.events += scan.events
        total.alerts += scan.alerts
        total.reports += scan.reports
        total.last_seq = scan.last_seq
        if scan.events < batch_size:
            break
    unsealed = _alert_if_unsealed()
    if unsealed is not None:
        total.alerts.append(unsealed)
    return total


def _alert_if_unsealed() -> int | None:
    """A critical alert, once per event, when the oldest unsealed event is older than the limit.

    Raised here, not from an event of its own: an event recorded about it would wait behind
    the same open transaction. The alert names the waiting event; UNIQUE(kind, event_seq)
    keeps it to one per event.
    """
    waiting = sealer.oldest_unsealed()
    if waiting is None:
        return None
    age, limit = timezone.now() - waiting.occurred_at, sealer.max_age()
    if age <= limit or Alert.objects.filter(kind=AlertKind.LEDGER_UNSEALED, event_seq=waiting.seq).exists():
        return None
    event = AuditEvent.objects.get(seq=waiting.seq)
    seconds = int(age.total_seconds())
    draft = Draft(
        kind=AlertKind.LEDGER_UNSEALED,
        severity=AlertSeverity.CRITICAL,
        summary=f"Audit event #{event.seq} ({event.action}) has waited {seconds} s to be sealed into the chain "
        f"(limit {int(limit.total_seconds())} s): a writer's transaction is held open, or no worker is sealing.",
        details={"seq": event.seq, "age_seconds": seconds, "limit_seconds": int(limit.total_seconds())},
    )
    with transaction.atomic():
        alert, raised = _raise(event, draft)
        audit.record_many([raised], returning=False)
        transaction.on_commit(partial(email_alerts, [alert.pk]))
    return alert.pk


def enqueue_scan() -> None:
    """Ring the scan's doorbell, at most once per ``DOORBELL_MS`` (``enqueue.ring``: the rung scan
    runs again after the window for the rings it left out); an unreachable broker only logs
    (beat runs the scan every minute)."""
    try:
        enqueue.ring(enqueue.SCAN_OVERSIGHT, quiet_ms=rules()["DOORBELL_MS"])
    except Exception:
        logger.warning("could not enqueue the oversight scan; the beat schedule will run it", exc_info=True)


def scan_soon() -> None:
    """Enqueue a scan once the caller's transaction commits, so oversight hears within seconds."""
    transaction.on_commit(enqueue_scan)


# --- email -------------------------------------------------------------------------------


def _unsent_alerts() -> list[int]:
    if not any(notify.oversight_addresses()):
        return []
    stale = timezone.now() - EMAIL_RETRY_AFTER
    return list(Alert.objects.filter(emailed_at__isnull=True, created_at__lte=stale).values_list("pk", flat=True)[:50])


def email_alerts(alert_ids: list[int]) -> int:
    """Email each alert to oversight (OVERSIGHT_EMAILS and active auditors); stamp ``emailed_at``.

    A failed send is logged and left unstamped; a later scan retries it.
    """
    if not alert_ids:
        return 0
    recipients = sorted({address for address in notify.oversight_addresses() if address})
    if not recipients:
        return 0
    sent = 0
    for alert in Alert.objects.filter(pk__in=alert_ids, emailed_at__isnull=True).select_related("case"):
        context = {"alert": alert, "url": notify.site_url(reverse("investigations:alert_detail", args=[alert.pk]))}
        try:
            for subject, body, addresses in notify.rendered_for("oversight-alert", recipients, context):
                send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, addresses)
        except Exception:
            logger.exception("could not email oversight alert %s; a later scan retries", alert.pk)
            continue
        Alert.objects.filter(pk=alert.pk).update(emailed_at=timezone.now())
        sent += 1
    return sent


# --- acknowledging -----------------------------------------------------------------------


def acknowledge_problem(user: User, alert: Alert) -> str | None:
    """Why ``user`` may not acknowledge ``alert``, or None. Auditors only, and never their own affairs."""
    if not is_auditor(user):
        return "Only auditors acknowledge oversight alerts."
    if alert.user_id == user.pk:
        return "This alert is about your own action; another auditor must acknowledge it."
    if alert.case_id and CaseMember.objects.filter(case_id=alert.case_id, user=user).exists():
        return "You are on this case's team; another auditor must acknowledge the alert."
    return None


@retry_on_conflict
def alert_acknowledge(*, actor: User, alert: Alert, note: str) -> Alert:
    """Close an alert with the auditor's note on what they checked; audited ``alert.acknowledged``.

    The alert row is locked, so two auditors acknowledging at once cannot both succeed.
    """
    problem = acknowledge_problem(actor, alert)
    if problem:
        raise PermissionDenied(problem)
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Say what you checked and why the alert can be closed."})
    if len(note) > TEXT_MAX:
        raise ValidationError({"note": f"At most {TEXT_MAX} characters."})
    with transaction.atomic():
        alert = locked(Alert.objects).select_related("case", "acknowledged_by").get(pk=alert.pk)
        if alert.is_acknowledged:
            raise InvalidTransition(
                f"The alert was already acknowledged by {alert.acknowledged_by.display_name} "
                f"at {alert.acknowledged_at:%Y-%m-%d %H:%M} UTC."
            )
        alert.acknowledged_by, alert.acknowledged_at, alert.note = actor, timezone.now(), note
        alert.save(update_fields=["acknowledged_by", "acknowledged_at", "note"])
        audit.record(
            action=Action.ALERT_ACKNOWLEDGED,
            actor=actor,
            target=alert,
            case_reference=alert.case.reference if alert.case else "",
            details={"kind": alert.kind, "event_seq": alert.event_seq, "note": note},
        )
    return alert


# --- the scope-diff report ---------------------------------------------------------------


def scope_diff(grant: Grant, queries: list[DataQuery]) -> dict:
    """Approved scope against what the grant's succeeded queries read: ids, dates and counts only."""
    succeeded = [query for query in queries if query.status == QueryStatus.SUCCEEDED]
    rows = Counter({subject: 0 for subject in grant.subjects})
    asked: Counter[int] = Counter()
    by_category = {category: {"queries": 0, "rows": 0} for category in grant.categories}
    windows: Counter[tuple[str, str]] = Counter()
    missing_counts = 0
    for query in succeeded:
        asked.update(query.subjects)
        entry = by_category.setdefault(query.category, {"queries": 0, "rows": 0})
        entry["queries"] += 1
        entry["rows"] += query.row_count or 0
        windows[(query.window_start.isoformat(), query.window_end.isoformat())] += 1
        if query.rows_by_subject is None:
            missing_counts += 1
        else:
            rows.update({int(subject): count for subject, count in query.rows_by_subject.items()})
    return {
        "approved": {
            "subjects": sorted(grant.subjects),
            "categories": list(grant.categories),
            "window_start": grant.window_start.isoformat(),
            "window_end": grant.window_end.isoformat(),
        },
        "queries": dict(Counter(query.status for query in queries)),
        "denials": dict(Counter(query.denial_reason for query in queries if query.status == QueryStatus.DENIED)),
        "subjects": [
            {"subject": subject, "queries": asked[subject], "rows": rows[subject]} for subject in sorted(rows)
        ],
        "categories": [{"category": name, **entry} for name, entry in by_category.items()],
        "windows": [{"start": start, "end": end, "queries": count} for (start, end), count in sorted(windows.items())],
        "rows_total": sum(query.row_count or 0 for query in succeeded),
        "queries_without_subject_counts": missing_counts,
    }


def unused_scope(grant: Grant, content: dict) -> tuple[list[int], list[str]]:
    """The subjects and categories ``grant`` approved that no succeeded query of ``content`` (a ``scope_diff``) read."""
    used_subjects = {entry["subject"] for entry in content["subjects"] if entry["queries"]}
    used_categories = {entry["category"] for entry in content["categories"] if entry["queries"]}
    return (
        [subject for subject in sorted(grant.subjects) if subject not in used_subjects],
        [category for category in grant.categories if category not in used_categories],
    )


def grant_report_write(*, event: AuditEvent) -> GrantReport | None:
    """Write the scope-diff report of the grant that ``event`` ended; once per grant."""
    written = _grant_report(event)
    if written is None:
        return None
    audit.record_many([written[1]], returning=False)
    return written[0]


def _grant_report(event: AuditEvent) -> tuple[GrantReport, dict] | None:
    """The report of the grant ``event`` ended and its ``grant.report_written`` event, not yet recorded."""
    grant_id = _target(event, GRANT_TYPE)
    if grant_id is None or GrantReport.objects.filter(grant_id=grant_id).exists():
        return None
    grant = Grant.objects.select_related("case").filter(pk=grant_id).first()
    if grant is None:
        return None
    content = scope_diff(grant, list(grant.queries.all()))
    if event.action == Action.GRANT_REVOKED:
        content["revoke_reason"] = (event.details or {}).get("reason", "")
    unused_subjects, unused_categories = unused_scope(grant, content)
    report = GrantReport.objects.create(
        grant=grant,
        event_seq=event.seq,
        ended=GRANT_ENDINGS[event.action],
        ended_at=event.occurred_at,
        content=content,
        unused_subjects=unused_subjects,
        unused_categories=unused_categories,
    )
    written = {
        "action": Action.GRANT_REPORT_WRITTEN,
        "target": grant,
        "case_reference": grant.case.reference,
        "details": {
            "report": report.pk,
            "unused_subjects": report.unused_subjects,
            "unused_categories": report.unused_categories,
            "rows_total": content["rows_total"],
        },
    }
    return report, written
