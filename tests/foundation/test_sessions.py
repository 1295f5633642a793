"""Session timeouts: idle (default 30 minutes) and absolute (default 12 hours)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from accounts.timeouts import SEEN_AT, SIGNED_IN_AT
from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PAGE = "/cases/"


def _signed_in(username: str = "lead") -> Client:
    client = Client()
    response = client.post(reverse("account_login"), {"login": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def _shift(client: Client, key: str, seconds: float) -> None:
    """Move a session timestamp into the past, as if that much time had gone by."""
    session = client.session
    session[key] = session[key] - int(seconds)
    session.save()


def test_defaults_are_30_minutes_idle_and_12_hours_absolute():
    assert timedelta(minutes=30) == django_settings.SESSION_IDLE_TIMEOUT
    assert timedelta(hours=12) == django_settings.SESSION_ABSOLUTE_TIMEOUT
    assert django_settings.SESSION_COOKIE_AGE == 12 * 3600


def test_an_idle_session_ends_and_the_next_page_asks_to_log_in(lead):
    client = _signed_in()
    assert client.get(PAGE).status_code == 200
    _shift(client, SEEN_AT, 30 * 60 + 1)
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    logout = AuditEvent.objects.filter(action=Action.AUTH_LOGOUT).get()
    assert logout.actor_id == lead.pk and logout.details == {"reason": "idle"}
    # Logging in again works, and starts a new session.
    assert _signed_in().get(PAGE).status_code == 200


def test_activity_keeps_a_session_alive(lead):
    client = _signed_in()
    for _ in range(3):
        _shift(client, SEEN_AT, 29 * 60)
        _shift(client, SIGNED_IN_AT, 29 * 60)
        assert client.get(PAGE).status_code == 200
    assert not AuditEvent.objects.filter(action=Action.AUTH_LOGOUT).exists()


def test_an_active_session_still_ends_after_the_absolute_timeout(lead):
    client = _signed_in()
    _shift(client, SIGNED_IN_AT, 12 * 3600 + 1)
    response = client.get(PAGE)
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action=Action.AUTH_LOGOUT).get().details == {"reason": "absolute"}


def test_the_timeouts_are_settings(lead, settings):
    settings.SESSION_IDLE_TIMEOUT = timedelta(minutes=5)
    client = _signed_in()
    _shift(client, SEEN_AT, 5 * 60 + 1)
    assert client.get(PAGE).status_code == 302


def test_an_api_call_with_a_timed_out_session_is_refused(lead):
    client = _signed_in()
    _shift(client, SEEN_AT, 31 * 60)
    assert client.get("/api/v1/me/").status_code in (401, 403)


def test_a_form_posted_after_the_timeout_changes_nothing(lead):
    client = _signed_in()
    _shift(client, SEEN_AT, 31 * 60)
    response = client.post(reverse("investigations:case_create"), {"title": "Should not be saved"})
    assert response.status_code == 302 and reverse("account_login") in response["Location"]
    from investigations.models import Case

    assert not Case.objects.exists()
