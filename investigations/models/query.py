from __future__ import annotations

from math import ceil

from django.conf import settings
from django.db import models

from userdata.catalogue import CATEGORIES

from .grant import Grant


class QueryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    DENIED = "denied", "Denied"
    FAILED = "failed", "Failed"


class DenialReason(models.TextChoices):
    GRANT_EXPIRED = "grant_expired", "The grant has expired"
    GRANT_REVOKED = "grant_revoked", "The grant was revoked"
    CASE_CLOSED = "case_closed", "The case is not open"
    NOT_GRANTEE = "not_grantee", "You are not a grantee of this grant"
    OUT_OF_SCOPE_SUBJECT = "out_of_scope_subject", "A subject is outside the grant's scope"
    OUT_OF_SCOPE_CATEGORY = "out_of_scope_category", "The category is outside the grant's scope"
    OUT_OF_SCOPE_WINDOW = "out_of_scope_window", "The time window is outside the grant's scope"


class DataQuery(models.Model):
    """One attempt to read user data under a grant: allowed, denied or failed, always recorded."""

    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="queries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=32)
    subjects = models.JSONField(default=list)
    window_start = models.DateField(null=True)
    window_end = models.DateField(null=True)
    page_size = models.PositiveIntegerField(default=100)
    status = models.CharField(max_length=16, choices=QueryStatus.choices, default=QueryStatus.QUEUED)
    denial_reason = models.CharField(max_length=32, choices=DenialReason.choices, blank=True)
    row_count = models.PositiveIntegerField(null=True)
    # {account id: rows returned}, counted at completion: the scope-diff report needs rows per
    # subject after the stored result is purged, and counts are not user data.
    rows_by_subject = models.JSONField(null=True, blank=True)
    truncated = models.BooleanField(default=False)
    digest = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    # Runs tried: the one that finished it, and each interrupted one noted as retrying.
    attempts = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["status", "requested_at"])]

    def __str__(self) -> str:
        return f"query {self.pk} ({self.status})"

    @property
    def retrying(self) -> bool:
        """Waiting again after a run that did not finish (worker died, database unavailable)."""
        return self.status in (QueryStatus.QUEUED, QueryStatus.RUNNING) and self.attempts > 0

    @property
    def status_label(self) -> str:
        """The status as people read it: a waiting query that was tried before is retrying.

        ``running`` is never committed by this release (a run's claim is inside the transaction
        that completes it); a row left ``running`` by an older release waits to be run again.
        """
        return "Retrying" if self.retrying else self.get_status_display()

    @property
    def num_pages(self) -> int:
        """Pages of ``page_size`` rows the result fills (one, even when it is empty)."""
        return max(1, ceil((self.row_count or 0) / self.page_size))

    @property
    def category_label(self) -> str:
        category = CATEGORIES.get(self.category)
        return category.label if category else self.category

    @property
    def windowed(self) -> bool:
        """Whether the window limited the rows (the catalogue says: events yes, the profile no)."""
        category = CATEGORIES.get(self.category)
        return category is None or category.windowed

    @property
    def empty_reason(self) -> str:
        """Why a succeeded query returned no rows, in words (empty for any other query)."""
        if self.status != QueryStatus.SUCCEEDED or self.row_count != 0:
            return ""
        category = CATEGORIES.get(self.category)
        accounts = "account" if len(self.subjects) == 1 else "accounts"
        if category is not None and not category.windowed:
            return f"no {category.label.lower()} exists for the {accounts} asked for (they may have been deleted)."
        window = f"{self.window_start:%Y-%m-%d} to {self.window_end:%Y-%m-%d}" if self.window_start else "the window"
        return f"the {accounts} asked for have no {self.category_label} recorded from {window}."

    def parameters(self) -> dict:
        return {
            "category": self.category,
            "subjects": list(self.subjects),
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "page_size": self.page_size,
        }


class QueryResult(models.Model):
    """The stored rows of a succeeded query. Purged after retention; the digest stays on the query."""

    query = models.OneToOneField(DataQuery, on_delete=models.CASCADE, related_name="result")
    columns = models.JSONField()
    rows = models.JSONField()
    stored_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"result of query {self.query_id}"
