"""Every change to a user is an accounts action on the ledger; a password change ends sessions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.actions import user_set_password
from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-77"


def _logged_in_browser(user) -> Client:
    browser = Client()
    assert browser.post(reverse("account_login"), {"login": user.username, "password": PASSWORD}).status_code == 302
    assert browser.get(reverse("home")).status_code == 200
    return browser


def _token_client(user) -> APIClient:
    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").status_code == 200
    return client


def test_a_password_reset_ends_every_session_and_token_of_the_user(lead, member, admin_user):
    laptop, phone = _logged_in_browser(lead), _logged_in_browser(lead)
    script = _token_client(lead)
    bystander, bystander_script = _logged_in_browser(member), _token_client(member)

    user_set_password(actor=admin_user, user=lead, password=NEW_PASSWORD)

    for browser in (laptop, phone):
        response = browser.get(reverse("home"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert script.get("/api/v1/me/").status_code == 401
    assert not AuthToken.objects.filter(user=lead).exists()
    lead.refresh_from_db()
    assert lead.check_password(NEW_PASSWORD)
    # Nobody else is logged out.
    assert bystander.get(reverse("home")).status_code == 200
    assert bystander_script.get("/api/v1/me/").status_code == 200

    event = AuditEvent.objects.get(action=Action.USER_PASSWORD_CHANGED)
    assert event.actor_id == admin_user.pk and event.target_id == str(lead.pk)
    assert event.details == {"by_self": False, "password_login": True, "sessions_ended": 2, "tokens_revoked": 1}
    assert NEW_PASSWORD not in str(event.details)


def test_a_weak_password_is_a_field_error_and_changes_nothing(lead):
    browser = _logged_in_browser(lead)
    with pytest.raises(ValidationError) as error:
        user_set_password(actor=lead, user=lead, password="123")
    assert "password" in error.value.message_dict
    lead.refresh_from_db()
    assert lead.check_password(PASSWORD)
    assert browser.get(reverse("home")).status_code == 200
    assert not AuditEvent.objects.filter(action=Action.USER_PASSWORD_CHANGED).exists()


def test_changing_ones_own_password_is_recorded_as_such(lead):
    user_set_password(actor=lead, user=lead, password=NEW_PASSWORD)
    assert AuditEvent.objects.get(action=Action.USER_PASSWORD_CHANGED).details["by_self"] is True
