"""The ledger: append-only, hash-chained audit events."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .actions import Action


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events cannot be updated")

    def delete(self):
        raise AppendOnlyError("audit events cannot be deleted")

    def for_case(self, reference: str) -> AuditEventQuerySet:
        return self.filter(case_reference=reference)


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,  # the ledger outlives users; the copies below keep who it was
        related_name="+",
    )
    actor_ref = models.CharField(max_length=64, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, choices=Action.choices, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    case_reference = models.CharField(max_length=32, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, unique=True, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted")


class ChainHead(models.Model):
    """One row holding the newest sequence number and hash; appends lock it."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"head #{self.seq}"
