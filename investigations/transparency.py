"""The transparency report: aggregate figures a works council, a regulator or the public may see.

Per quarter or any date range: cases opened by type, requests by category and outcome,
narrowed approvals, requests touching protected subjects and their outcomes, time to decision,
grants issued, revoked and expired, queries run and rows returned, denials by reason, and
oversight alerts raised with the time to acknowledge them.

Publishable by construction: only counts and durations, never a case reference, a subject or a
person; every count from 1 to ``THRESHOLD - 1`` is shown as "fewer than 5", and where a group
shows its total, a second cell is suppressed with the first so that no suppressed count can be
recovered by subtraction (secondary suppression). Statistics over fewer than ``THRESHOLD``
values are suppressed too.

The JSON form is signed with the audit signing key (Ed25519), so a reader holding the
published public key can check that it came from this Custos and was not edited.
"""

from __future__ import annotations

import base64
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db.models import Sum

import audit.canonical
from audit import checkpoints
from userdata.catalogue import CATEGORY_CHOICES

from .models import Alert, Case, DataPullRequest, DataQuery, Decision, Grant
from .models.case import CaseType
from .models.grant import GrantStatus, db_now
from .models.query import DenialReason, QueryStatus
from .models.request import DecisionOutcome, RequestStatus

THRESHOLD = 5
SUPPRESSED = f"fewer than {THRESHOLD}"
SIGNATURE_DOMAIN = b"custos.transparency.v2\n"
FORMAT_VERSION = 2  # 2: signed over audit.canonical (non-ASCII escaped), Custos's one encoding
# What a request ended as, for the report; "pending" is still awaiting a decision.
OUTCOMES = ("approved", "approved_narrowed", "rejected", "returned", "lapsed", "withdrawn", "pending")
ENDED = {RequestStatus.REJECTED, RequestStatus.RETURNED, RequestStatus.LAPSED, RequestStatus.WITHDRAWN}


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @classmethod
    def quarter(cls, year: int, number: int) -> Period:
        if number not in (1, 2, 3, 4):
            raise ValueError("a quarter is 1 to 4")
        start = date(year, 3 * number - 2, 1)
        following = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
        return cls(start, following - timedelta(days=1))

    @classmethod
    def containing(cls, day: date) -> Period:
        return cls.quarter(day.year, (day.month - 1) // 3 + 1)

    @property
    def label(self) -> str:
        for number in (1, 2, 3, 4):
            if self == Period.quarter(self.start.year, number):
                return f"{self.start.year} Q{number}"
        return f"{self.start.isoformat()} to {self.end.isoformat()}"

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as UTC datetimes."""
        return (
            datetime.combine(self.start, time.min, tzinfo=UTC),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC),
        )

    def filter(self, field: str) -> dict[str, datetime]:
        start, end = self.bounds()
        return {f"{field}__gte": start, f"{field}__lt": end}


# --- raw figures (never shown as they are) --------------------------------------------------


def _outcome(request: DataPullRequest, narrowed: set[int]) -> str:
    if request.status == RequestStatus.APPROVED:
        return "approved_narrowed" if request.pk in narrowed else "approved"
    if request.status == RequestStatus.SUBMITTED:
        return "pending"
    if request.status in ENDED:
        return str(request.status)
    return "pending"


def _hours(durations: list[timedelta]) -> dict[str, float | None]:
    hours = sorted(duration.total_seconds() / 3600 for duration in durations)
    if not hours:
        return {"count": 0, "median_hours": None, "p90_hours": None}
    p90 = statistics.quantiles(hours, n=10, method="inclusive")[-1] if len(hours) > 1 else hours[0]
    return {"count": len(hours), "median_hours": round(statistics.median(hours), 1), "p90_hours": round(p90, 1)}


def _requests(period: Period) -> dict[str, Any]:
    submitted = list(
        DataPullRequest.objects.filter(**period.filter("submitted_at")).only(
            "pk", "status", "categories", "is_protected", "submitted_at", "decided_at"
        )
    )
    narrowed = set(
        Decision.objects.filter(request__in=[request.pk for request in submitted])
        .filter(outcome=DecisionOutcome.APPROVE_NARROWED)
        .values_list("request_id", flat=True)
    )
    by_category: dict[str, Counter] = {value: Counter() for value, _ in CATEGORY_CHOICES}
    by_outcome: Counter[str] = Counter()
    protected: Counter[str] = Counter()
    for request in submitted:
        outcome = _outcome(request, narrowed)
        by_outcome[outcome] += 1
        if request.is_protected:
            protected[outcome] += 1
        for category in request.categories:
            by_category.setdefault(str(category), Counter())[outcome] += 1
    decided = DataPullRequest.objects.filter(**period.filter("decided_at"), submitted_at__isnull=False)
    moments = decided.values_list("submitted_at", "decided_at")
    durations = [decided_at - submitted_at for submitted_at, decided_at in moments]
    return {
        "requests_by_outcome": {outcome: by_outcome[outcome] for outcome in OUTCOMES},
        "requests_by_category_and_outcome": {
            category: {outcome: counts[outcome] for outcome in OUTCOMES} for category, counts in by_category.items()
        },
        "narrowed_approvals": by_outcome["approved_narrowed"],
        "protected_requests_by_outcome": {outcome: protected[outcome] for outcome in OUTCOMES},
        "time_to_decision": _hours(durations),
    }


def _grants_and_queries(period: Period) -> dict[str, Any]:
    start, end = period.bounds()
    grants = Grant.objects.all()
    queries = DataQuery.objects.filter(**period.filter("requested_at"))
    succeeded = queries.filter(status=QueryStatus.SUCCEEDED)
    denials = Counter(queries.filter(status=QueryStatus.DENIED).values_list("denial_reason", flat=True))
    return {
        "grants": {
            "issued": grants.filter(**period.filter("starts_at")).count(),
            "revoked": grants.filter(status=GrantStatus.REVOKED, **period.filter("revoked_at")).count(),
            # Ran out in the period by the database clock, whether or not the expiry task marked it yet.
            "expired": grants.exclude(status=GrantStatus.REVOKED)
            .filter(expires_at__gte=start, expires_at__lt=min(end, db_now()))
            .count(),
        },
        "queries": {
            "run": queries.exclude(status=QueryStatus.DENIED).count(),
            "succeeded": succeeded.count(),
            "rows_returned": succeeded.aggregate(rows=Sum("row_count"))["rows"] or 0,
        },
        "denials_by_reason": {value: denials[value] for value, _ in DenialReason.choices},
    }


def _cases_and_alerts(period: Period) -> dict[str, Any]:
    opened = Counter(Case.objects.filter(**period.filter("created_at")).values_list("case_type", flat=True))
    alerts = Alert.objects.filter(**period.filter("created_at"))
    kinds = Counter(alerts.values_list("kind", flat=True))
    acknowledged = alerts.filter(acknowledged_at__isnull=False).values_list("created_at", "acknowledged_at")
    return {
        "cases_opened_by_type": {value: opened[value] for value, _ in CaseType.choices},
        "alerts_raised_by_kind": dict(sorted(kinds.items())),
        "alerts_raised": sum(kinds.values()),
        "time_to_acknowledge": _hours([done - raised for raised, done in acknowledged]),
    }


def raw_figures(period: Period) -> dict[str, Any]:
    return {**_cases_and_alerts(period), **_requests(period), **_grants_and_queries(period)}


# --- suppression ----------------------------------------------------------------------------


def _cell(count: int) -> int | str:
    return SUPPRESSED if 0 < count < THRESHOLD else count


def suppress_group(counts: dict[str, int]) -> dict[str, int | str]:
    """Suppress small cells; if exactly one is suppressed, also the smallest other non-zero one.

    Groups are published with their parts (a reader can add them up), so one suppressed cell
    alone could be recovered from a total published elsewhere; two cannot be told apart.
    """
    shown = {label: _cell(count) for label, count in counts.items()}
    hidden = [label for label, value in shown.items() if value == SUPPRESSED]
    if len(hidden) == 1:
        others = sorted((count, label) for label, count in counts.items() if label not in hidden and count > 0)
        if others:
            shown[others[0][1]] = SUPPRESSED
    return shown


def _suppress_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Too few values: the count says "fewer than 5" and the statistics are left out (null)."""
    if stats["count"] < THRESHOLD:
        return {"count": _cell(stats["count"]), "median_hours": None, "p90_hours": None}
    return stats


def publishable(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures with every small number suppressed (see the module docstring)."""
    queries = figures["queries"]
    few_queries = queries["succeeded"] < THRESHOLD
    return {
        "cases_opened_by_type": suppress_group(figures["cases_opened_by_type"]),
        "requests_by_outcome": suppress_group(figures["requests_by_outcome"]),
        "requests_by_category_and_outcome": {
            category: suppress_group(counts) for category, counts in figures["requests_by_category_and_outcome"].items()
        },
        "narrowed_approvals": _cell(figures["narrowed_approvals"]),
        "protected_requests_by_outcome": suppress_group(figures["protected_requests_by_outcome"]),
        "time_to_decision": _suppress_stats(figures["time_to_decision"]),
        "grants": suppress_group(figures["grants"]),
        "queries": {
            "run": _cell(queries["run"]),
            "succeeded": _cell(queries["succeeded"]),
            "rows_returned": SUPPRESSED if few_queries and queries["succeeded"] else queries["rows_returned"],
        },
        "denials_by_reason": suppress_group(figures["denials_by_reason"]),
        "alerts_raised_by_kind": suppress_group(figures["alerts_raised_by_kind"]),
        "alerts_raised": _cell(figures["alerts_raised"]),
        "time_to_acknowledge": _suppress_stats(figures["time_to_acknowledge"]),
    }


# --- the report, signed ------------------------------------------------------------------------


def canonical(document: dict[str, Any]) -> bytes:
    return audit.canonical.encode(document)


def report(period: Period, generated_at: datetime) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "origin": settings.AUDIT_LOG_ORIGIN,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "label": period.label},
        "generated_at": generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "suppression": {"threshold": THRESHOLD, "shown_as": SUPPRESSED},
        "figures": publishable(raw_figures(period)),
    }


def signed(document: dict[str, Any]) -> dict[str, Any]:
    """``{"report": ..., "signature": base64, "key": base64}``: Ed25519 over the domain and the canonical report."""
    key = checkpoints.signing_key()
    signature = key.sign(SIGNATURE_DOMAIN + canonical(document))
    return {
        "report": document,
        "signature": base64.b64encode(signature).decode("ascii"),
        "key": checkpoints.public_key_text(key.public_key()),
    }


def check(envelope: dict[str, Any], public_key: str) -> bool:
    """What a reader does, with the public key they trust (not the one in the envelope)."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
    try:
        key.verify(base64.b64decode(envelope["signature"]), SIGNATURE_DOMAIN + canonical(envelope["report"]))
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True


def csv_rows(document: dict[str, Any]) -> list[list[str]]:
    """One row per figure: section, label, sub-label, value."""
    rows = [["section", "item", "detail", "value"]]

    def walk(section: str, value: Any, item: str = "", detail: str = "") -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if item:
                    walk(section, inner, item, key)
                else:
                    walk(section, inner, key)
            return
        rows.append([section, item, detail, "" if value is None else str(value)])

    for section, value in document["figures"].items():
        walk(section, value)
    return rows
