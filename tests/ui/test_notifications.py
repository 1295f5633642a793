"""In-app notifications: the action, and the changes that leave one."""

from __future__ import annotations

import pytest
from django.db import transaction

from investigations import actions
from investigations.models import Notification, NotificationKind

pytestmark = pytest.mark.django_db


def test_notify_skips_the_actor_and_inactive_people(lead, member, reviewer, inactive_user):
    made = actions.notify(
        actor=lead,
        recipients=[lead, member, reviewer, inactive_user],
        kind="mention",
        text="You were mentioned",
        link="/x/",
    )
    assert sorted(n.recipient.username for n in made) == sorted([member.username, reviewer.username])
    assert Notification.objects.for_user(member).unread().get().kind == NotificationKind.MENTION


def test_notify_rolls_back_with_the_change(lead, member):
    with pytest.raises(RuntimeError), transaction.atomic():
        actions.notify(actor=None, recipients=[member], kind="task_assigned", text="A task")
        raise RuntimeError
    assert not Notification.objects.exists()


def test_unknown_kind_is_refused(member):
    with pytest.raises(ValueError):
        actions.notify(actor=None, recipients=[member], kind="gossip", text="x")


def test_mark_read_touches_only_the_actors_own(lead, member):
    actions.notify(actor=None, recipients=[lead, member], kind="mention", text="x")
    assert actions.notifications_mark_read(actor=member) == 1
    assert Notification.objects.for_user(lead).unread().count() == 1
    assert not Notification.objects.for_user(member).unread().exists()
