"""What every page's navigation counts: unread notifications, open alerts (auditors), the
review queue (legal reviewers). One COUNT each, whatever the page; the alerts and the queue
stop at ``BADGE_LIMIT`` ("99+"), so a badge costs the same however long the queue grows."""

from __future__ import annotations

from audit.access import is_auditor
from config.listing import count_up_to

from .access import review_queue_for
from .models import Alert, Notification

BADGE_LIMIT = 99


def oversight(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    counts = {"unread_notification_count": Notification.objects.for_user(user).unread().count()}
    if is_auditor(user):
        counts["open_alert_count"] = count_up_to(Alert.objects.open(), BADGE_LIMIT)
    if user.is_reviewer:
        counts["review_queue_count"] = count_up_to(review_queue_for(user), BADGE_LIMIT)
    return counts
