"""A local user changes their own password: validators, other sessions and tokens end, this
session goes on, the ledger records it."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/accounts/password/"
NEW = "correct horse battery staple 9"


def _signed_in(username: str = "lead") -> Client:
    client = Client()
    assert client.post(reverse("account_login"), {"login": username, "password": PASSWORD}).status_code == 302
    return client


def _change(client: Client, new: str = NEW, old: str = PASSWORD):
    return client.post(URL, {"old_password": old, "new_password1": new, "new_password2": new})


def test_the_page_is_linked_from_every_page_and_asks_for_the_current_password(lead):
    client = _signed_in()
    assert f'href="{URL}"' in client.get("/").content.decode()
    page = client.get(URL).content.decode()
    assert 'name="old_password"' in page and 'name="new_password1"' in page and 'name="new_password2"' in page


def test_changing_ends_other_sessions_and_tokens_but_keeps_this_one(lead, other_investigator):
    here, elsewhere, bystander = _signed_in(), _signed_in(), _signed_in("other_investigator")
    AuthToken.objects.create(user=lead)
    AuthToken.objects.create(user=other_investigator)
    response = _change(here)
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert here.get("/cases/").status_code == 200  # this session goes on
    assert elsewhere.get("/cases/").status_code == 302  # the other one is over
    assert bystander.get("/cases/").status_code == 200  # someone else's is not touched
    assert not AuthToken.objects.filter(user=lead).exists()
    assert AuthToken.objects.filter(user=other_investigator).count() == 1
    lead.refresh_from_db()
    assert lead.check_password(NEW)
    event = AuditEvent.objects.filter(action=Action.USER_PASSWORD_CHANGED).get()
    assert event.actor_id == lead.pk and event.details["by_self"] is True
    assert event.details["tokens_revoked"] == 1
    assert Session.objects.count() == 2  # this session under a new key, and the bystander's


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("short-pw-11", "at least 12 characters"),
        ("password1234", "too common"),
        ("123456789012345", "entirely numeric"),
    ],
)
def test_a_weak_password_is_a_field_error_and_changes_nothing(lead, new, message):
    client = _signed_in()
    response = _change(client, new)
    assert response.status_code == 200
    assert message in response.content.decode()
    lead.refresh_from_db()
    assert lead.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action=Action.USER_PASSWORD_CHANGED).exists()


def test_a_wrong_current_password_changes_nothing(lead):
    client = _signed_in()
    response = _change(client, old="not my password")
    assert response.status_code == 200 and "old password was entered incorrectly" in response.content.decode()
    lead.refresh_from_db()
    assert lead.check_password(PASSWORD)


def test_a_user_without_a_local_password_is_told_where_it_is_managed(lead, client):
    lead.set_unusable_password()
    lead.save(update_fields=["password"])
    client.force_login(lead)
    page = client.get(URL).content.decode()
    assert "organisation's sign-on" in page and 'name="new_password1"' not in page
    assert client.post(URL, {"old_password": "", "new_password1": NEW, "new_password2": NEW}).status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_guessing_the_current_password_is_recorded_and_locks_like_a_sign_in(lead, settings):
    """A borrowed session cannot guess the password on this page without limit: each wrong
    current password is an auth.login_failed event and counts towards the lockout, after which
    even the right one is refused and nothing changes."""
    client = _signed_in()
    before = AuditEvent.objects.filter(action=Action.AUTH_LOGIN_FAILED).count()
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _change(client, old=f"guess-{attempt}")
        assert response.status_code == 200 and "old_password" in response.context["form"].errors
    assert _change(client, old="last-guess").status_code == 429  # the failure that starts the lockout
    assert AuditEvent.objects.filter(action=Action.AUTH_LOGIN_FAILED).count() - before == settings.AXES_FAILURE_LIMIT
    assert _change(client).status_code == 429  # locked: the right password does not change it now
    lead.refresh_from_db()
    assert lead.check_password(PASSWORD) and not lead.check_password(NEW)
