"""Password sign-in switched off (``CUSTOS_LOCAL_LOGIN=false``) except for the break-glass account,
on every path that checks a password; every break-glass sign-in is recorded and alerted."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.factors import has_second_factor
from accounts.models import User
from accounts.sso import is_break_glass_name
from audit.events import Action
from audit.models import AuditEvent
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind, AlertSeverity
from tests.conftest import PASSWORD, make_user, sign_in
from tests.foundation.test_settings import run_manage
from tests.stepup import unused_code

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def local_login_off(settings):
    settings.LOCAL_LOGIN = False
    settings.BREAK_GLASS_USERNAME = "glass"
    return settings


@pytest.fixture
def glass(db):
    return make_user("glass", [], is_staff=True)


def _token(username: str, password: str = PASSWORD):
    """A token request as a client would send it: with a code when the user has a second factor."""
    body = {"username": username, "password": password}
    user = User.objects.filter(username=username).first()
    if user is not None and has_second_factor(user):
        body["otp"] = unused_code(user)
    return APIClient().post(TOKEN_URL, body, format="json")


def _page_login(username: str, password: str = PASSWORD) -> Client:
    client = Client()
    client.post(reverse("account_login"), {"login": username, "password": password, "next": "/admin/"})
    return client


def test_api_tokens_only_for_the_break_glass_account(local_login_off, lead, glass):
    refused = _token("lead")
    assert refused.status_code == 401
    assert AuditEvent.objects.filter(action=Action.AUTH_LOGIN_FAILED, details__username="lead").exists()
    assert not AuditEvent.objects.filter(action=Action.AUTH_LOGIN).exists()
    assert _token("glass").status_code == 201
    assert AuditEvent.objects.filter(action=Action.AUTH_BREAK_GLASS, actor=glass).count() == 1


def test_the_login_page_and_the_admin_only_for_the_break_glass_account(local_login_off, admin_user, glass):
    # The admin's login sends to the login page (one sign-in for all, with single sign-on on it).
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in _page_login("admin").session
    failed = AuditEvent.objects.get(action=Action.AUTH_LOGIN_FAILED)
    assert failed.details == {"username": "admin"}
    client = sign_in(Client(), glass)  # the password, then the code of the staff member's factor
    assert client.session["_auth_user_id"] == str(glass.pk)
    assert client.get("/admin/").status_code == 200
    assert AuditEvent.objects.filter(action=Action.AUTH_BREAK_GLASS, actor=glass).count() == 1


def test_with_local_login_off_the_page_shows_the_break_glass_form_only_as_such(local_login_off, settings):
    settings.CUSTOS_SSO = {**settings.CUSTOS_SSO, "ISSUER": "https://idp.example.org"}
    page = Client().get(reverse("account_login")).content.decode()
    assert "Password sign-in is switched off" in page and "Break-glass sign-in" in page


def test_the_break_glass_password_is_still_checked(local_login_off, glass):
    assert _token("glass", "not-the-password").status_code == 401
    assert not AuditEvent.objects.filter(action=Action.AUTH_BREAK_GLASS).exists()


def test_local_login_on_lets_everyone_use_their_password(settings, lead):
    settings.LOCAL_LOGIN, settings.BREAK_GLASS_USERNAME = True, "glass"
    assert _token("lead").status_code == 201
    assert not AuditEvent.objects.filter(action=Action.AUTH_BREAK_GLASS).exists()


def test_a_break_glass_sign_in_raises_a_critical_oversight_alert(local_login_off, glass):
    assert _token("glass").status_code == 201
    event = AuditEvent.objects.get(action=Action.AUTH_BREAK_GLASS)
    assert event.details == {"username": "glass", "via": TOKEN_URL}
    alerts_scan()
    alert = Alert.objects.get(kind=AlertKind.BREAK_GLASS_SIGN_IN)
    assert alert.severity == AlertSeverity.CRITICAL and alert.user_id == glass.pk
    assert "'glass'" in alert.summary and TOKEN_URL in alert.summary


def test_the_break_glass_name_is_compared_as_usernames_are(local_login_off):
    assert is_break_glass_name("GLASS") and is_break_glass_name("ｇｌａｓｓ")  # case-folded, NFKC
    assert not is_break_glass_name("glass2") and not is_break_glass_name("") and not is_break_glass_name(None)
    local_login_off.BREAK_GLASS_USERNAME = ""
    assert not is_break_glass_name("")  # none configured: nobody is


def test_a_lookalike_of_the_break_glass_name_is_not_the_break_glass_account(local_login_off):
    # "gIass" (capital i) cannot even be created next to "glass"; without "glass", it is just a user.
    make_user("gIass", [])
    assert _token("gIass").status_code == 401


def test_local_login_off_needs_single_sign_on(tmp_path):
    env = {"SECRET_KEY": "k" * 50, "CUSTOS_LOCAL_LOGIN": "false", "CUSTOS_VAR_DIR": str(tmp_path)}
    result = run_manage("check", env={**env, "CUSTOS_ENV_FILE": str(tmp_path / "none.env")})
    assert result.returncode != 0 and "CUSTOS_LOCAL_LOGIN=false needs single sign-on" in result.stderr
