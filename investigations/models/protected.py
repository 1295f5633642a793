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


class ProtectedSubject(models.Model):
    """An account on the protected-subject registry: requests naming it need two approvals."""

    account_id = models.BigIntegerField(unique=True)
    category = models.CharField(max_length=32, choices=ProtectedCategory.choices)
    note = models.TextField(blank=True, max_length=2000)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account_id"]

    def __str__(self) -> str:
        return f"account {self.account_id} ({self.get_category_display()})"
