from django.conf import settings
from django.db import models


class ProtectedCategory(models.TextChoices):
    JOURNALIST = "journalist", "Journalist"
    MEDIA_ORGANISATION = "media_organisation", "Media organisation"
    ELECTED_OFFICIAL = "elected_official", "Elected official"
    LAWYER = "lawyer", "Lawyer"
    ACTIVIST = "activist", "Activist"
    MINOR = "minor", "Minor"
    EMPLOYEE_FAMILY = "employee_family", "Employee's family"
    OTHER = "other", "Other"


class ProtectedSubjectQuerySet(models.QuerySet):
    def categories_of(self, accounts) -> dict[int, str]:
        """{account id: category} for those of ``accounts`` on the registry."""
        return dict(self.filter(account_id__in=list(accounts)).values_list("account_id", "category"))


class ProtectedSubject(models.Model):
    """An account on the protected-subject registry: requests touching it need the protected policy.

    The account's emails, phones and devices as known in the user-data store are covered too:
    subject resolution links any account sharing one of them (see ``gateway.resolve_subjects``).
    Changed only through ``actions.protected``, each change audited.
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

    objects = ProtectedSubjectQuerySet.as_manager()

    class Meta:
        ordering = ["account_id"]

    def __str__(self) -> str:
        return f"account {self.account_id} ({self.get_category_display()})"
