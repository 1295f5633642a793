"""In-app notifications: what a person should see next time they open Custos.

A notification holds a short sentence and a link inside the app, never user data. Rows are
written by ``investigations.actions.notification.notify`` in the transaction of the change
that causes them, so a rolled-back change leaves no notification behind.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

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
