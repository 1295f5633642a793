"""In-app notifications: what a person should see next time they open Custos.

A notification holds a short sentence and a link inside the app, never user data. Rows are
written by ``investigations.actions.notification.notify`` in the transaction of the change
that causes them, so a rolled-back change leaves no notification behind.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.fields import GrowingChoicesField

TEXT_MAX = 300


class NotificationKind(models.TextChoices):
    REQUEST_DECIDED = "request_decided", "Request decided"
    REQUEST_RETURNED = "request_returned", "Request returned for changes"
    REQUEST_LAPSED = "request_lapsed", "Request lapsed"
    REQUEST_SUBMITTED = "request_submitted", "Request awaiting review"
    GRANT_EXPIRING = "grant_expiring", "Grant about to expire"
    ALERT_RAISED = "alert_raised", "New oversight alert"
    MENTION = "mention", "Mentioned in a note"
    TASK_ASSIGNED = "task_assigned", "Task assigned"


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_user(self, user) -> NotificationQuerySet:
        return self.filter(recipient=user)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = GrowingChoicesField(max_length=32, choices=NotificationKind.choices)
    text = models.CharField(max_length=TEXT_MAX)
    link = models.CharField(max_length=200, blank=True, help_text="A path inside the app.")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.recipient_id}: {self.text}"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class OutgoingMailQuerySet(models.QuerySet["OutgoingMail"]):
    def pending(self) -> OutgoingMailQuerySet:
        """Neither sent nor given up on."""
        return self.filter(sent_at__isnull=True, failed_at__isnull=True)


class OutgoingMail(models.Model):
    """One e-mail (one rendering, its recipients in one time zone) for a worker to send.

    Written by ``investigations.notify.queue`` in the transaction of the change that causes it,
    so a rolled-back change sends nothing and a committed one is sent even if the broker, the
    worker or the mail server is down at that moment: ``notify.deliver_due`` (task
    ``investigations.deliver_mail``) sends what is due, retries what failed and gives up after
    ``MAIL_ATTEMPTS`` tries.
    """

    template = models.CharField(max_length=64, help_text="The emails/ template it was rendered from.")
    subject = models.TextField()
    body = models.TextField()
    recipients = models.JSONField(help_text="A list of addresses.")
    created_at = models.DateTimeField(auto_now_add=True)
    due_at = models.DateTimeField(
        default=timezone.now, help_text="Not sent before: a retry's time, or the end of a sending worker's lease."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True, help_text="Given up after MAIL_ATTEMPTS tries.")

    objects = OutgoingMailQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(
                fields=["due_at", "id"],
                name="outgoingmail_pending",
                condition=models.Q(sent_at__isnull=True, failed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.template} to {len(self.recipients)} ({self.state})"

    @property
    def state(self) -> str:
        if self.sent_at:
            return "sent"
        return "failed" if self.failed_at else "pending"
