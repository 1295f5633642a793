"""Evidence on a case: team documents and query results saved under a grant.

An item never changes once written: a new version is a new item that ``supersedes`` the
one before. Only the custody fields (the last re-verification of the stored file) are ever
updated, and an item is deleted only when its case's rules allow it (``Case.evidence_may_be_deleted``).
The bytes live in the ``evidence`` storage alias (``settings.STORAGES``; read and write them
through ``investigations.custody``) under ``stored_name``, a name Custos makes up; the name
the uploader gave is kept, sanitised, in ``original_name``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .case import TEXT_MAX, TITLE_MAX, Case
from .grant import Grant
from .query import DataQuery

# What ``evidence_verify`` may change on a saved item, and what the retention purge sets
# (``actions.retention``); nothing else ever changes.
CUSTODY_FIELDS = {"integrity", "verified_at"}
PURGE_FIELDS = {"purged_at"}


class EvidenceKind(models.TextChoices):
    DOCUMENT = "document", "Team document"
    QUERY_RESULT = "query_result", "Query result"


class EvidenceFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"


class Integrity(models.TextChoices):
    UNCHECKED = "unchecked", "Not re-verified yet"
    INTACT = "intact", "Intact"
    MISMATCH = "mismatch", "Changed since upload"
    MISSING = "missing", "File missing"


class EvidenceQuerySet(models.QuerySet["Evidence"]):
    def documents(self) -> EvidenceQuerySet:
        return self.filter(kind=EvidenceKind.DOCUMENT)

    def query_results(self) -> EvidenceQuerySet:
        return self.filter(kind=EvidenceKind.QUERY_RESULT)

    def stored(self) -> EvidenceQuerySet:
        """Items whose file is still kept (not purged after retention)."""
        return self.filter(purged_at__isnull=True)

    def current(self) -> EvidenceQuerySet:
        """Items no later version supersedes."""
        return self.filter(superseded_by__isnull=True)


class Evidence(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=16, choices=EvidenceKind.choices)
    title = models.CharField(max_length=TITLE_MAX)
    description = models.TextField(blank=True, max_length=TEXT_MAX)
    stored_name = models.CharField(
        max_length=255, unique=True, help_text="The object's name in the evidence storage (made up by Custos)."
    )
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the stored bytes, computed by Custos.")
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100, help_text="Sniffed from the bytes, not told by the client.")
    original_name = models.CharField(max_length=160)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    # A query result saved under a grant: where the rows came from.
    grant = models.ForeignKey(Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence")
    query = models.ForeignKey(DataQuery, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence")
    scope = models.JSONField(null=True, blank=True, help_text="The grant's frozen scope when the result was saved.")
    result_digest = models.CharField(max_length=64, blank=True)
    format = models.CharField(max_length=8, choices=EvidenceFormat.choices, blank=True)
    # Custody: the last re-verification of the stored bytes against ``sha256``.
    integrity = models.CharField(max_length=16, choices=Integrity.choices, default=Integrity.UNCHECKED)
    verified_at = models.DateTimeField(null=True, blank=True)
    # Retention: the file was deleted after its case had been closed for the retention period.
    # The record stays, with its hash; the ledger has an ``evidence.purged`` event for it.
    purged_at = models.DateTimeField(null=True, blank=True)

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "evidence"
        indexes = [models.Index(fields=["case", "kind"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="document", grant__isnull=True, query__isnull=True)
                | models.Q(kind="query_result", grant__isnull=False, query__isnull=False),
                name="evidence_kind_matches_source",
            ),
        ]

    def __str__(self) -> str:
        return f"evidence {self.pk} on {self.case_id} ({self.original_name})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            fields = set(kwargs.get("update_fields") or ())
            if not fields or not (fields <= CUSTODY_FIELDS or fields <= PURGE_FIELDS):
                raise ValueError("evidence never changes; a new version is a new item (only custody fields update)")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if not self.case.evidence_may_be_deleted:
            raise ValueError(f"evidence is not deleted while its case is {self.case.status_phrase}")
        return super().delete(*args, **kwargs)

    @property
    def holds_user_data(self) -> bool:
        """Rows pulled under a grant: readable only by that grant's grantees (``access.py``)."""
        return self.kind == EvidenceKind.QUERY_RESULT

    @property
    def is_purged(self) -> bool:
        return self.purged_at is not None

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]
