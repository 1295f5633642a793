"""The ledger: append-only, hash-chained audit events.

Append-only is enforced three times over: the runtime database role may only INSERT and
SELECT (``manage.py setup_db_roles``), triggers refuse UPDATE, DELETE and TRUNCATE
(``audit.triggers``), and the model and its queryset below refuse every write except the
ledger's own inserts (``audit.ledger.record`` and ``audit.ledger.record_many``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .events import Action
from .fields import GrowingChoicesField


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event, or to write one by hand."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events cannot be updated")

    def delete(self):
        raise AppendOnlyError("audit events cannot be deleted")

    def _raw_delete(self, using):
        raise AppendOnlyError("audit events cannot be deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("audit events cannot be updated")

    def bulk_create(self, objs, *args, **kwargs):
        raise AppendOnlyError("audit events are written only by audit.record() and audit.record_many()")

    def ledger_insert(self, events: list[AuditEvent], *, rows_per_statement: int) -> None:
        """The ledger's multi-row INSERT (``record_many`` on SQLite): a statement per ``rows_per_statement`` events.

        On PostgreSQL ``record_many`` sends its rows as one JSON document instead (``audit.ledger``).

        Like ``save()``, it refuses events the ledger did not chain itself. ``bulk_create``
        is not used because Django caps SQLite at 999 parameters per statement (66 events),
        far below SQLite's real limit, which would make the statement count grow with N.
        """
        if not all(getattr(event, "_ledger_append", False) for event in events):
            raise AppendOnlyError("audit events are written only by audit.record() and audit.record_many()")
        fields = self.model._meta.concrete_fields
        for start in range(0, len(events), rows_per_statement):
            self._insert(events[start : start + rows_per_statement], fields=fields, using=self.db)

    def for_case(self, reference: str) -> AuditEventQuerySet:
        return self.filter(case_reference=reference)


class AuditEvent(models.Model):
    """One ledger entry.

    ``seq`` comes from a database sequence on PostgreSQL (gaps where a transaction rolled
    back) and from the chain head on SQLite; the chain (``prev_hash``, ``hash``) is written
    by the sealer once the event is committed (``audit.sealer``).
    """

    seq = models.BigIntegerField(primary_key=True, editable=False)
    occurred_at = models.DateTimeField(editable=False, db_index=True)
    # No database constraint and no cascade: deleting a user must neither delete nor update
    # ledger rows. The column keeps the id after the user is gone; actor_ref and
    # actor_username keep who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # no query looks events up by actor id alone (docs/audit.md, "Indexes")
        related_name="+",
    )
    actor_ref = models.CharField(max_length=64, blank=True)
    actor_username = models.CharField(max_length=150, blank=True, db_index=True)
    action = GrowingChoicesField(max_length=64, choices=Action.choices, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    case_reference = models.CharField(max_length=32, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # Empty (NULL) until the sealer chains the event (``audit.sealer``, PostgreSQL); filled once,
    # never changed after (the UPDATE trigger allows exactly that). SQLite chains at append time.
    # Not indexed: no query looks an event up by its hash, and a seal that touches no indexed
    # column is a HOT update (no index entry written). A fork or a duplicated link is a
    # broken link to the verifier, and the sealer refuses to chain on from a head that does
    # not match the chain (``audit.sealer``).
    prev_hash = models.CharField(max_length=64, null=True, editable=False)
    hash = models.CharField(max_length=64, null=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events cannot be changed")
        if not getattr(self, "_ledger_append", False):
            raise AppendOnlyError("audit events are written only by audit.record() and audit.record_many()")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted")

    @property
    def action_label(self) -> str:
        try:
            return Action(self.action).label
        except ValueError:
            return self.action


class ChainHead(models.Model):
    """One row: the newest sealed event's sequence number, its hash and time.

    On PostgreSQL only the sealer moves it (and its row lock makes the sealer single-runner);
    on SQLite every append does. The row may be updated by the runtime role; it is not
    evidence by itself. Tampering with it can only make sealing stop (the sealer checks that
    the head names the newest sealed event, with its stored hash, before chaining on), never
    fork the chain, and the verifier compares it with the chain.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"head #{self.seq}"


class StreamKind(models.TextChoices):
    SYSLOG = "syslog", "Syslog (RFC 5424 over TCP, TLS)"
    WEBHOOK = "webhook", "HTTPS webhook (HMAC-SHA256 signed)"


class StreamDestination(models.Model):
    """Where the ledger is streamed to, and how far it got (``audit.streams``).

    ``cursor`` is the last sequence number the receiver acknowledged (or that the destination's
    filter skipped): it only moves after an acknowledgement, so an event is delivered at least
    once, in ledger order. Changes go through the actions in ``audit.streams``, which record them.
    """

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=StreamKind.choices)
    url = models.CharField(
        max_length=500,
        help_text="Webhook: https://host[:port]/path. Syslog: tls://host:port (or tcp://host:port for a "
        "relay on the same machine).",
    )
    secret = models.CharField(max_length=200, blank=True, help_text="Webhook: the HMAC-SHA256 key (write-only).")
    ca_file = models.CharField(
        max_length=500, blank=True, help_text="PEM file of the CA that signs the receiver's certificate; "
        "empty: the system's trust store."
    )
    action_prefixes = models.JSONField(
        default=list, blank=True, help_text="Only events whose action starts with one of these; empty: every event."
    )
    paused = models.BooleanField(default=False)
    from_environment = models.BooleanField(default=False, help_text="Defined by AUDIT_STREAMS; change it there.")
    cursor = models.BigIntegerField(default=0, help_text="Last sequence number acknowledged by the receiver.")
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    failures = models.PositiveIntegerField(default=0, help_text="Failed deliveries since the last success.")
    failing_since = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Backing off until then.")
    alerted_at = models.DateTimeField(null=True, blank=True, help_text="When this failure was reported to oversight.")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"stream {self.name}"


class VerificationRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class VerificationRun(models.Model):
    """One "Verify now" started from the verification page, with its progress for the page.

    The outcome itself is a ledger event (``audit.verified`` / ``audit.verify_failed``), as for
    every verification wherever it runs; this row only carries progress and points at it.
    """

    requested_by = models.CharField(max_length=150, help_text="Username of the auditor who started it.")
    status = models.CharField(
        max_length=16, choices=VerificationRunStatus.choices, default=VerificationRunStatus.QUEUED
    )
    checked = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    summary = models.CharField(max_length=500, blank=True)
    event_seq = models.BigIntegerField(null=True, blank=True, help_text="The ledger event recording the outcome.")

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"verification run {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == VerificationRunStatus.DONE:
            return 100
        return min(99, self.checked * 100 // self.total) if self.total else 0
