"""Oversight: alerts derived from the audit trail, the scan cursor, and grant scope-diff reports.

Everything here is written by ``investigations.actions.oversight``, which reads the ledger
after a cursor. Alerts and reports hold ids and counts only, never user data: auditors read them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from audit.fields import GrowingChoicesField

from .case import TEXT_MAX, Case
from .grant import Grant
from .query import DataQuery
from .request import DataPullRequest


class AlertKind(models.TextChoices):
    PROTECTED_REQUEST_SUBMITTED = "protected_request_submitted", "Protected request submitted"
    PROTECTED_REQUEST_DECIDED = "protected_request_decided", "Protected request decided"
    TRIPWIRE = "tripwire", "Query tripwire"
    REPEATED_DENIALS = "repeated_denials", "Repeated denied queries"
    OFF_HOURS_QUERY = "off_hours_query", "Query outside working hours"
    SUBJECT_IN_UNRELATED_CASES = "subject_in_unrelated_cases", "Subject requested in unrelated cases"
    REFILED_AFTER_REJECTION = "refiled_after_rejection", "Request re-filed after rejection"
    STREAM_SILENCED = "stream_silenced", "Ledger stream paused, deleted or redirected"
    STREAM_FAILING = "stream_failing", "Ledger stream failing"
    TEAM_CHANGED_PENDING_DECISION = "team_changed_pending_decision", "Team changed while a decision was pending"
    REGISTRY_WEAKENING_PROPOSED = "registry_weakening_proposed", "Registry weakening proposed"
    REGISTRY_WEAKENING_CONFIRMED = "registry_weakening_confirmed", "Registry weakening confirmed"
    PRIVILEGE_GRANTED = "privilege_granted", "Staff or superuser status granted"
    SIGN_IN_LOCKED = "sign_in_locked", "Sign-in locked after a burst of failures"
    IDENTIFIER_PROBING = "identifier_probing", "Repeated subject lookups in drafts"
    SECOND_FACTOR_RESET = "second_factor_reset", "Second factor reset"
    EVIDENCE_INTEGRITY = "evidence_integrity", "Stored evidence changed or missing"
    SSO_REFUSED = "sso_refused", "Single sign-on refused"
    BREAK_GLASS_SIGN_IN = "break_glass_sign_in", "Break-glass account signed in"
    LEGAL_HOLD_LIFT_PROPOSED = "legal_hold_lift_proposed", "Lifting a legal hold proposed"
    LEGAL_HOLD_LIFTED = "legal_hold_lifted", "Legal hold lifted"
    LEDGER_UNSEALED = "ledger_unsealed", "Audit event not sealed in time"


class AlertSeverity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertQuerySet(models.QuerySet["Alert"]):
    def open(self) -> AlertQuerySet:
        return self.filter(acknowledged_at__isnull=True)

    def acknowledged(self) -> AlertQuerySet:
        return self.filter(acknowledged_at__isnull=False)


class Alert(models.Model):
    """One oversight alert, raised by the audit event ``event_seq`` (one per kind and event)."""

    kind = GrowingChoicesField(max_length=40, choices=AlertKind.choices)
    severity = models.CharField(max_length=16, choices=AlertSeverity.choices)
    event_seq = models.BigIntegerField(help_text="The audit event that raised the alert.")
    event_at = models.DateTimeField(help_text="When that event happened (database clock).")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(DataPullRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    grant = models.ForeignKey(Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    query = models.ForeignKey(DataQuery, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Whose action raised the alert.",
    )
    summary = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, max_length=TEXT_MAX)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-event_seq", "-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "event_seq"], name="one_alert_per_kind_and_event")]
        indexes = [
            models.Index(fields=["acknowledged_at", "event_seq"]),
            models.Index(fields=["kind", "user", "event_at"]),
        ]

    def __str__(self) -> str:
        return f"alert {self.pk} ({self.kind})"

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class OversightCursor(models.Model):
    """One row: the last audit sequence number the scan has processed. Locked by every scan."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"oversight cursor at #{self.last_seq}"


class SubjectMention(models.Model):
    """An account named by a submitted request, indexed from ``request.submitted`` events.

    The scan keeps this index so that "named in another case" and "re-filed after rejection"
    are one indexed query on every database (JSON containment differs between backends).
    ``rejected_seq`` is the ``decision.recorded`` event that rejected the request, if any.
    """

    account_id = models.BigIntegerField()
    request = models.ForeignKey(DataPullRequest, on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    submitted_seq = models.BigIntegerField()
    rejected_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "account_id"], name="one_mention_per_request")]
        indexes = [models.Index(fields=["account_id", "submitted_seq"])]

    def __str__(self) -> str:
        return f"account {self.account_id} in request {self.request_id}"


class GrantReport(models.Model):
    """What a grant allowed against what was actually queried, written once when the grant ends.

    ``content`` holds ids, categories, dates and counts (rows per subject come from the counts
    each query saved at completion), never rows.
    """

    grant = models.OneToOneField(Grant, on_delete=models.PROTECT, related_name="report")
    event_seq = models.BigIntegerField(help_text="The grant.expired or grant.revoked event.")
    ended = models.CharField(max_length=16)
    ended_at = models.DateTimeField()
    content = models.JSONField()
    unused_subjects = models.JSONField(default=list)
    unused_categories = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ended_at", "-id"]

    def __str__(self) -> str:
        return f"scope report of grant {self.grant_id}"
