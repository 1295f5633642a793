"""An API token for someone who signs in through single sign-on: with password sign-in switched
off (``CUSTOS_LOCAL_LOGIN=false``) the token endpoint, which takes a password, gives them nothing,
so the signed-in page ``/accounts/api-token/`` issues one, only right after a second-factor check
(the provider's asserted one, or Custos's own), shown once and recorded."""

from __future__ import annotations

import re

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import TokenSecondFactor, User
from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD, make_user, sign_in
from tests.stepup import age_second_factor, unused_code

pytestmark = pytest.mark.django_db

PAGE = "/accounts/api-token/"
TOKEN = re.compile(r'id="api-token"[^>]*>([0-9a-f]{64})<')


@pytest.fixture
def local_login_off(settings):
    settings.LOCAL_LOGIN = False
    settings.BREAK_GLASS_USERNAME = "glass"
    return settings


def _token_of(response) -> str | None:
    found = TOKEN.search(response.content.decode())
    return found.group(1) if found else None


def _api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_an_sso_user_gets_a_token_from_the_page(local_login_off, sso, client):
    sso.person("amr.sso", groups=["idp-legal"], second_factor=True)
    sso.sign_in(client, "amr.sso")
    user = User.objects.get(username="amr.sso")
    # the password endpoint has nothing to offer them
    refused = APIClient().post("/api/v1/auth/token/", {"username": "amr.sso", "password": "x"}, format="json")
    assert refused.status_code == 401
    page = client.get(PAGE)
    assert page.status_code == 200 and _token_of(page) is None
    response = client.post(PAGE)
    assert response.status_code == 200
    token = _token_of(response)
    assert token is not None
    assert response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    assert _api(token).get("/api/v1/me/").json()["username"] == "amr.sso"
    instance = AuthToken.objects.get(user=user)
    # marked as obtained with a second factor: the session's own check, not a new one
    assert TokenSecondFactor.checked_at_for(instance) is not None
    issued = AuditEvent.objects.get(action=Action.API_TOKEN_ISSUED)
    assert issued.actor_id == user.pk and issued.details["token_key"] == instance.token_key
    assert issued.details["via"] == "page" and token not in str(issued.details)
    # shown once: the page does not show it again
    assert _token_of(client.get(PAGE)) is None


def test_no_token_without_a_second_factor_asserted_or_enrolled(local_login_off, sso, client):
    """A sign-on without the provider's second factor, by a user with no factor of Custos's own:
    a stolen provider password (or session) must not turn into a long-lived token."""
    sso.person("pwd.sso", groups=["idp-investigators"], second_factor=False)
    sso.sign_in(client, "pwd.sso")
    response = client.post(PAGE)
    assert response.status_code == 200 and _token_of(response) is None
    assert "has none" in response.content.decode()
    assert not AuthToken.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.API_TOKEN_ISSUED).exists()


def test_an_old_check_asks_for_a_code_first(local_login_off, sso, client):
    sso.person("amr.sso", groups=["idp-legal"], second_factor=True)
    sso.sign_in(client, "amr.sso")
    age_second_factor(client)
    response = client.post(PAGE)
    assert response.status_code == 200 and _token_of(response) is None
    assert "Confirm with your authenticator code" not in response.content.decode()  # no factor here
    assert "sign in again" in response.content.decode()
    assert not AuthToken.objects.exists()


def test_a_local_user_steps_up_with_a_code_on_the_page(client):
    user = make_user("rev", ["legal_reviewer"])
    sign_in(client, user)
    age_second_factor(client)
    held = client.post(PAGE)
    assert _token_of(held) is None and "Confirm with your authenticator code" in held.content.decode()
    wrong = client.post(PAGE, {"step_up_code": "000000"})
    assert _token_of(wrong) is None and not AuthToken.objects.exists()
    response = client.post(PAGE, {"step_up_code": unused_code(user)})
    token = _token_of(response)
    assert token is not None
    assert _api(token).get("/api/v1/me/").status_code == 200
    # the password endpoint stays for local accounts
    body = {"username": "rev", "password": PASSWORD, "otp": unused_code(user)}
    assert APIClient().post("/api/v1/auth/token/", body, format="json").status_code == 201


def test_the_token_limit_holds_on_the_page(client, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 1}
    user = make_user("rev", ["legal_reviewer"])
    sign_in(client, user)
    AuthToken.objects.create(user=user)
    response = client.post(PAGE)
    assert _token_of(response) is None and AuthToken.objects.filter(user=user).count() == 1
    assert "Too many live tokens" in response.content.decode()
