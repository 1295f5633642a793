"""In-app notifications: the action, and the changes that leave one."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from investigations import actions
from investigations.models import Notification, NotificationKind
from tests.investigations.fixtures import file_request

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


# --- what leaves a notification, and the centre ---------------------------------------------


@pytest.mark.django_db(databases=["default", "userdata"])
def test_a_return_notifies_the_requester_with_the_reason_and_links_the_edit_form(submitted_request, reviewer, lead):
    actions.request_decide(actor=reviewer, request=submitted_request, outcome="return", reason="Say which window.")
    note = Notification.objects.for_user(lead).get()
    assert note.kind == NotificationKind.REQUEST_RETURNED
    assert "Say which window." in note.text and note.link == reverse(
        "investigations:request_edit", args=[submitted_request.pk]
    )
    assert not Notification.objects.for_user(reviewer).exclude(kind=NotificationKind.REQUEST_SUBMITTED).exists()


@pytest.mark.django_db(databases=["default", "userdata"])
def test_submission_notifies_reviewers_off_the_team_and_a_decision_the_requester(
    open_case, lead, reviewer, second_reviewer, store
):
    request = file_request(open_case, lead)
    actions.request_submit(actor=lead, request=request)
    assert Notification.objects.filter(kind=NotificationKind.REQUEST_SUBMITTED).count() == 2  # both reviewers
    actions.request_decide(actor=second_reviewer, request=request, outcome="approve")
    note = Notification.objects.for_user(lead).get(kind=NotificationKind.REQUEST_DECIDED)
    assert note.text == f"Request {request.pk} on {open_case.reference} was approved."


@pytest.mark.django_db(databases=["default", "userdata"])
def test_expiring_grant_notifies_its_grantees(active_grant, lead):
    from datetime import timedelta

    from django.utils import timezone

    from investigations.actions import lifecycle
    from investigations.models import Grant

    Grant.objects.filter(pk=active_grant.pk).update(expires_at=timezone.now() + timedelta(minutes=30))
    lifecycle.grants_warn_expiring()
    kinds = list(Notification.objects.for_user(lead).values_list("kind", flat=True))
    assert kinds.count(NotificationKind.GRANT_EXPIRING) == 2  # the 24 h and the 1 h threshold


@pytest.mark.django_db(databases=["default", "userdata"])
def test_a_new_alert_notifies_auditors(protected_request, auditor, lead):
    from investigations.actions import oversight

    oversight.alerts_scan()
    note = Notification.objects.for_user(auditor).filter(kind=NotificationKind.ALERT_RAISED).first()
    assert note is not None and note.link.startswith("/oversight/alerts/")
    assert not Notification.objects.for_user(lead).filter(kind=NotificationKind.ALERT_RAISED).exists()


def test_centre_lists_own_notifications_and_the_nav_counts_unread(lead, member, client):
    actions.notify(actor=None, recipients=[lead], kind="mention", text="Ann mentioned you", link="/cases/")
    actions.notify(actor=None, recipients=[member], kind="mention", text="Someone else's", link="/cases/")
    client.force_login(lead)
    page = client.get(reverse("investigations:notification_list")).content.decode()
    assert "Ann mentioned you" in page and "Someone else" not in page
    assert '1<span class="visually-hidden"> unread</span>' in page
    mine = Notification.objects.for_user(lead).get()
    theirs = Notification.objects.for_user(member).get()
    assert client.get(reverse("investigations:notification_open", args=[theirs.pk])).status_code == 404
    response = client.get(reverse("investigations:notification_open", args=[mine.pk]))
    assert response.status_code == 302 and response["Location"] == "/cases/"
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert not mine.is_unread and theirs.is_unread
    assert 'visually-hidden"> unread' not in client.get(reverse("investigations:notification_list")).content.decode()


def test_mark_all_read_is_post_only(lead, client):
    actions.notify(actor=None, recipients=[lead], kind="mention", text="x", link="/")
    client.force_login(lead)
    assert client.get(reverse("investigations:notification_read_all")).status_code == 405
    assert client.post(reverse("investigations:notification_read_all")).status_code == 302
    assert not Notification.objects.for_user(lead).unread().exists()


@pytest.mark.django_db(databases=["default", "userdata"])
def test_reviewer_nav_shows_the_review_queue_size(submitted_request, reviewer, lead, client):
    client.force_login(reviewer)
    page = client.get(reverse("home")).content.decode()
    assert '1<span class="visually-hidden"> request waiting</span>' in page
    client.force_login(lead)
    assert 'visually-hidden"> request' not in client.get(reverse("home")).content.decode()
