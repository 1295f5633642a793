"""In-app notifications: written beside the change that causes them, read in the notification centre.

Other actions call ``notify`` inside their own transaction (a rolled-back change leaves no
notification). Notifications carry a sentence and an in-app link, never user data, and are not
ledger events themselves: the change that causes one is already recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from accounts.models import User

from ..models import Notification, NotificationKind
from ..models.notification import TEXT_MAX


def notify(
    *,
    actor: User | None,
    recipients: Iterable[User],
    kind: NotificationKind | str,
    text: str,
    link: str = "",
) -> list[Notification]:
    """Leave one unread notification for each active recipient other than ``actor``.

    ``actor`` is whoever caused it (``None`` for the scheduler); nobody is told of their own
    act. ``link`` is a path inside the app (``reverse(...)``), shown as the notification's link.
    """
    kind = NotificationKind(kind)
    people = {user.pk: user for user in recipients if user is not None and user.is_active}
    if actor is not None:
        people.pop(actor.pk, None)
    if not people:
        return []
    text = text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 1] + "…"
    rows = [Notification(recipient=user, kind=kind, text=text, link=link) for user in people.values()]
    return Notification.objects.bulk_create(rows)


def notifications_mark_read(*, actor: User, ids: Iterable[int] | None = None) -> int:
    """Mark ``actor``'s own notifications read (all unread ones when ``ids`` is None); returns how many."""
    with transaction.atomic():
        unread = Notification.objects.for_user(actor).unread()
        if ids is not None:
            unread = unread.filter(pk__in=list(ids))
        return unread.update(read_at=timezone.now())
