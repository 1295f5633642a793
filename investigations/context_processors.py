"""What every page's navigation counts: unread notifications, open alerts (auditors), the
review queue (legal reviewers). One COUNT each, whatever the page."""

from __future__ import annotations

from audit.access import is_auditor

from .access import review_queue_for
from .models import Alert, Notification


def oversight(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    counts = {"unread_notification_count": Notification.objects.for_user(user).unread().count()}
    if is_auditor(user):
        counts["open_alert_count"] = Alert.objects.open().count()
    if user.is_reviewer:
        counts["review_queue_count"] = review_queue_for(user).count()
    return counts
