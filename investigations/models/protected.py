from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ProtectedCategory(models.TextChoices):
    JOURNALIST = "journalist", "Journalist"
    MEDIA_ORGANISATION = "media_organisation", "Media organisation"
    ELECTED_OFFICIAL = "elected_official", "Elected official"
    LAWYER = "lawyer", "Lawyer"
    ACTIVIST = "activist", "Activist"
    MINOR = "minor", "Minor"
    EMPLOYEE_FAMILY = "employee_family", "Employee's family"
    OTHER = "other", "Other"


def cooling_period() -> timedelta:
    """How long a removed entry still protects its account (``CUSTOS["REGISTRY_COOLING_DAYS"]``)."""
    return timedelta(days=settings.CUSTOS["REGISTRY_COOLING_DAYS"])


class ProtectedSubjectQuerySet(models.QuerySet["ProtectedSubject"]):
    def listed(self) -> ProtectedSubjectQuerySet:
        """Entries on the registry now (not removed)."""
        return self.filter(removed_at__isnull=True)

    def in_force(self) -> ProtectedSubjectQuerySet:
        """Entries that protect their account now: listed, or removed less than the cooling
        period ago (requests about a just-removed subject still follow the protected policy)."""
        return self.filter(Q(removed_at__isnull=True) | Q(removed_at__gt=timezone.now() - cooling_period()))

    def categories_of(self, accounts) -> dict[int, str]:
        """{account id: category} for those of ``accounts`` protected now (``in_force``)."""
        return dict(self.in_force().filter(account_id__in=list(accounts)).values_list("account_id", "category"))


class ProtectedSubject(models.Model):
    """An account on the protected-subject registry: requests touching it need the protected policy.

    The account's emails, phones and devices as known in the user-data store are covered too:
    subject resolution links any account sharing one of them (see ``gateway.resolve_subjects``).
    Changed only through ``actions.protected``, each change audited. Removing an entry or
    moving it to a weaker category takes two senior legal reviewers (``RegistryProposal``); a
    removed entry keeps its row with ``removed_at`` and still protects during the cooling period.
    """

    account_id = models.BigIntegerField(unique=True)
    category = models.CharField(max_length=32, choices=ProtectedCategory.choices)
    source = models.CharField(
        max_length=300, blank=True, help_text="Where the classification comes from (press card, public register, ...)."
    )
    note = models.TextField(blank=True, max_length=2000)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True, help_text="When a confirmed removal took effect.")

    objects = ProtectedSubjectQuerySet.as_manager()

    class Meta:
        ordering = ["account_id"]

    def __str__(self) -> str:
        return f"account {self.account_id} ({self.get_category_display()})"

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    @property
    def protected_until(self):
        """For a removed entry, when its cooling period ends (None while listed)."""
        return self.removed_at + cooling_period() if self.removed_at else None


class ProposalKind(models.TextChoices):
    REMOVE = "remove", "Removal"
    DOWNGRADE = "downgrade", "Move to a weaker category"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Awaiting a second senior reviewer"
    CONFIRMED = "confirmed", "Confirmed"
    WITHDRAWN = "withdrawn", "Withdrawn"


class RegistryProposal(models.Model):
    """A proposal to weaken the registry: remove an entry or move it to a weaker category.

    Nothing changes until a second senior legal reviewer, not the proposer, confirms it; until
    then the entry protects as before. Written only by ``actions.protected``.
    """

    subject = models.ForeignKey(ProtectedSubject, on_delete=models.PROTECT, related_name="proposals")
    kind = models.CharField(max_length=16, choices=ProposalKind.choices)
    category_before = models.CharField(max_length=32, choices=ProtectedCategory.choices)
    category_after = models.CharField(max_length=32, choices=ProtectedCategory.choices, blank=True)
    source_after = models.CharField(max_length=300, blank=True)
    note_after = models.TextField(blank=True, max_length=2000)
    reason = models.TextField(max_length=2000)
    status = models.CharField(max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.PENDING)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject"], condition=Q(status="pending"), name="one_pending_proposal_per_subject"
            )
        ]

    def __str__(self) -> str:
        return f"proposal {self.pk}: {self.kind} account {self.subject.account_id}"

    @property
    def is_pending(self) -> bool:
        return self.status == ProposalStatus.PENDING
