"""Tokens: hashed, expiring, revocable; obtaining one is audited like a page login."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.factors import has_second_factor
from accounts.models import User
from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.investigations.matrix import events_since, ledger_mark
from tests.stepup import unused_code

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


def _token(username: str, password: str = PASSWORD):
    """A token request as a client would send it: with a code when the user has a second factor."""
    body = {"username": username, "password": password}
    user = User.objects.filter(username=username).first()
    if user is not None and has_second_factor(user):
        body["otp"] = unused_code(user)
    return APIClient().post(TOKEN_URL, body, format="json")


def test_token_for_username_and_password_is_stored_hashed_and_expires(lead, settings):
    mark = ledger_mark()
    response = _token("lead")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"] == {
        "id": lead.pk,
        "username": "lead",
        "display_name": "lead",
        "email": "lead@example.org",
        "roles": ["investigator"],
        "is_staff": False,
    }
    stored = AuthToken.objects.get(user=lead)
    assert body["token"] not in (stored.digest, stored.token_key) and len(stored.digest) == 128
    ttl = settings.REST_KNOX["TOKEN_TTL"]
    assert timedelta(0) < stored.expiry - timezone.now() <= ttl
    assert events_since(mark) == [Action.AUTH_LOGIN]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/v1/me/").json()["username"] == "lead"


@pytest.mark.parametrize("username", ["lead", "nobody"])
def test_a_wrong_password_is_401_and_recorded_like_a_failed_page_login(lead, username):
    mark = ledger_mark()
    response = _token(username, "not-the-password")
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"
    assert events_since(mark) == [Action.AUTH_LOGIN_FAILED]
    event = AuditEvent.objects.get(seq=mark + 1)
    assert event.details == {"username": username} and "not-the-password" not in str(event.details)
    assert not AuthToken.objects.exists()


def test_missing_fields_are_field_errors(lead):
    response = APIClient().post(TOKEN_URL, {"username": "lead"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["password"]


def test_an_inactive_user_gets_no_token_and_an_existing_one_stops_working(inactive_user, lead, admin_user):
    assert _token("inactive").status_code == 401
    token = _token("lead").json()["token"]
    lead.is_active = False
    lead.save(update_fields=["is_active"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").status_code == 401


def test_logout_revokes_the_token(lead):
    token = _token("lead").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    mark = ledger_mark()
    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert events_since(mark) == [Action.AUTH_LOGOUT]
    assert not AuthToken.objects.filter(user=lead).exists()
    assert client.get("/api/v1/me/").status_code == 401


def test_an_expired_token_is_refused(lead):
    token = _token("lead").json()["token"]
    AuthToken.objects.filter(user=lead).update(expiry=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").status_code == 401
    assert not AuthToken.objects.filter(user=lead).exists()


def test_a_forged_token_is_refused(lead):
    token = _token("lead").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token[:-1]}{'0' if token[-1] != '0' else '1'}")
    assert client.get("/api/v1/me/").status_code == 401


def test_token_requests_are_throttled(lead, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth_token": "3/minute"})
    codes = [_token("lead", "wrong").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_session_login_works_for_the_browser_and_needs_csrf(lead, client):
    client.force_login(lead)
    assert client.get("/api/v1/me/").json()["roles"] == ["investigator"]
    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(lead)
    response = strict.post("/api/v1/cases/", {"title": "x"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_me_lists_every_role(senior_reviewer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {_token('senior_reviewer').json()['token']}")
    assert client.get("/api/v1/me/").json()["roles"] == ["legal_reviewer", "senior_legal_reviewer"]


def test_the_token_endpoint_refuses_a_token_past_the_per_user_limit(lead, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 1}
    client = APIClient()
    first = client.post("/api/v1/auth/token/", {"username": lead.username, "password": PASSWORD}, format="json")
    assert first.status_code == 201, first.content
    second = client.post("/api/v1/auth/token/", {"username": lead.username, "password": PASSWORD}, format="json")
    assert second.status_code == 403 and second.json()["code"] == "token_limit"
    assert AuthToken.objects.filter(user=lead).count() == 1
