"""The case report: what a case did, for legal review or closure, as produced and handed out.

A produced report is kept as it was produced (the HTML and the PDF rendered from it), so a
later download is the same bytes as the hash its ``case_report.produced`` event recorded.
Nothing in it ever changes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .case import Case


class ReportAudience(models.TextChoices):
    # The case team's version: before a decision, nothing that depends on the user-data store
    # or the protected registry (invariant 10). Everyone but legal reviewers off the team gets it.
    TEAM = "team", "Case team"
    # Legal reviewers off the team: everything, as their request pages show it.
    LEGAL = "legal", "Legal review"


class CaseReport(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="reports")
    audience = models.CharField(max_length=8, choices=ReportAudience.choices)
    produced_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    produced_at = models.DateTimeField()
    first_seq = models.BigIntegerField(help_text="The first ledger event of the case the report tells.")
    last_seq = models.BigIntegerField(help_text="The last ledger event of the case the report tells.")
    html = models.TextField()
    html_sha256 = models.CharField(max_length=64)
    pdf = models.BinaryField()
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the PDF, as recorded in the ledger.")

    class Meta:
        ordering = ["-produced_at", "-id"]

    def __str__(self) -> str:
        return f"report {self.pk} on {self.case_id} ({self.audience})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("a produced case report never changes")
        super().save(*args, **kwargs)

    @property
    def filename(self) -> str:
        return f"{self.case.reference}-report-{self.pk}.pdf"

    @property
    def size(self) -> int:
        return len(self.pdf)
