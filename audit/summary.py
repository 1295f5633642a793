"""What the auditor's start page shows: today's activity and the last verification.

Counts only, in a constant number of queries however long the ledger is. The caller records
that the auditor looked (``audit.viewed``), as for every other auditor page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from django.db.models import Count, Q
from django.utils import timezone

from .events import Action
from .models import AuditEvent

DENIALS = (Action.ACCESS_DENIED, Action.QUERY_DENIED, Action.AUTH_LOGIN_FAILED)
VERIFICATIONS = (Action.AUDIT_VERIFIED, Action.AUDIT_VERIFY_FAILED)


@dataclass(frozen=True)
class Today:
    since: datetime
    events: int
    denials: int
    last_verification: AuditEvent | None

    @property
    def verification_ok(self) -> bool | None:
        """True or False from the last run; None when no verification has run yet."""
        if self.last_verification is None:
            return None
        return self.last_verification.action == Action.AUDIT_VERIFIED and bool(
            self.last_verification.details.get("ok", True)
        )


def start_of_day(now: datetime | None = None) -> datetime:
    """Midnight of today in the reader's time zone (UTC unless they chose another)."""
    zone = timezone.get_current_timezone()
    now = now or timezone.now()
    return datetime.combine(now.astimezone(zone).date(), time.min, tzinfo=zone)


def today(now: datetime | None = None) -> Today:
    since = start_of_day(now)
    counts = AuditEvent.objects.filter(occurred_at__gte=since).aggregate(
        events=Count("seq"), denials=Count("seq", filter=Q(action__in=DENIALS))
    )
    last = AuditEvent.objects.filter(action__in=VERIFICATIONS).order_by("-seq").first()
    return Today(since=since, events=counts["events"], denials=counts["denials"], last_verification=last)
