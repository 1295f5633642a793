from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .case import TEXT_MAX, Case

if TYPE_CHECKING:
    from ..scope import Scope


class RequestStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    RETURNED = "returned", "Returned for changes"
    LAPSED = "lapsed", "Lapsed"
    WITHDRAWN = "withdrawn", "Withdrawn"


EDITABLE_STATUSES = {RequestStatus.DRAFT, RequestStatus.RETURNED}


class LegalBasis(models.TextChoices):
    INTERNAL_POLICY = "internal_policy", "Internal policy"
    LEGAL_PROCESS = "legal_process", "Legal process (court order, subpoena)"
    IMMINENT_HARM = "imminent_harm", "Imminent harm"
    REGULATORY = "regulatory", "Regulatory obligation"
    OTHER = "other", "Other"


class DataPullRequest(models.Model):
    """A request to read some categories of some subjects' data over a window, on a case.

    ``subjects`` holds resolved account ids of the user-data store; ``subject_inputs`` what
    the requester typed and how each was resolved (audited lookup through the gateway).
    The window is a pair of dates, both inclusive.
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.DRAFT)
    subjects = models.JSONField(default=list)
    subject_inputs = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=list)
    window_start = models.DateField()
    window_end = models.DateField()
    justification = models.TextField(max_length=TEXT_MAX)
    legal_basis = models.CharField(max_length=32, choices=LegalBasis.choices)
    legal_basis_other = models.CharField(max_length=300, blank=True)
    duration_hours = models.PositiveIntegerField()
    is_protected = models.BooleanField(default=False)
    protected_categories = models.JSONField(default=list, blank=True)
    # From the audited resolution: subjects sharing an email, phone or device with a protected
    # account ({"subject id": [protected ids]}), and the subjects that are employees.
    linked_subjects = models.JSONField(default=dict, blank=True)
    employee_subjects = models.JSONField(default=list, blank=True)
    # Categories the case type's purpose limit escalates (asked about non-employees).
    purpose_limited = models.JSONField(default=list, blank=True)
    review_round = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)


    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("decide_request", "Decide on the request")]
        indexes = [models.Index(fields=["status", "submitted_at"])]

    def __str__(self) -> str:
        return f"request {self.pk} on {self.case.reference}"

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_STATUSES

    @property
    def needs_protected_policy(self) -> bool:
        """Touches a protected subject, or escalated by its case type's purpose limit."""
        return self.is_protected or bool(self.purpose_limited)

    def grantee_candidates(self) -> models.QuerySet:
        """Whom a decision may name as grantees: the case's active team members other than the
        requester (who holds the grant anyway), by username. Page and API offer the same."""
        from django.contrib.auth import get_user_model

        members = get_user_model().objects.filter(case_memberships__case=self.case_id, is_active=True)
        return members.exclude(pk=self.requested_by_id).order_by("username")

    def requested_scope(self) -> Scope:
        """What was asked for, as a ``Scope`` (checked, narrowed and recorded through it)."""
        from ..scope import Scope

        return Scope(
            subjects=tuple(self.subjects),
            categories=tuple(self.categories),
            window_start=self.window_start,
            window_end=self.window_end,
            duration_hours=self.duration_hours,
        )

    def scope(self) -> dict:
        """The requested scope as the ledger records it (``Scope.as_record``)."""
        return self.requested_scope().as_record()


class DecisionOutcome(models.TextChoices):
    APPROVE = "approve", "Approve"
    APPROVE_NARROWED = "approve_narrowed", "Approve, narrowed"
    REJECT = "reject", "Reject"
    RETURN = "return", "Return for changes"


APPROVING_OUTCOMES = {DecisionOutcome.APPROVE, DecisionOutcome.APPROVE_NARROWED}


class Decision(models.Model):
    """One reviewer's decision on one review round of a request. The approved scope is a copy."""

    request = models.ForeignKey(DataPullRequest, on_delete=models.PROTECT, related_name="decisions")
    review_round = models.PositiveIntegerField()
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewer_was_senior = models.BooleanField(default=False)
    outcome = models.CharField(max_length=20, choices=DecisionOutcome.choices)
    reason = models.TextField(blank=True, max_length=TEXT_MAX)
    subjects = models.JSONField(default=list)
    categories = models.JSONField(default=list)
    window_start = models.DateField(null=True)
    window_end = models.DateField(null=True)
    duration_hours = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "review_round", "reviewer"], name="one_decision_per_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} by {self.reviewer_id} on request {self.request_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("decisions cannot be changed once recorded")
        super().save(*args, **kwargs)

    @property
    def is_approval(self) -> bool:
        return self.outcome in APPROVING_OUTCOMES


class RequestUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(DataPullRequest, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class RequestGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(DataPullRequest, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass
