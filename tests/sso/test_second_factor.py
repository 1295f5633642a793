"""A second factor asserted by the identity provider (``amr``/``acr``) counts as Custos's;
otherwise Custos asks for its own, as after a password."""

from __future__ import annotations

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.urls import reverse

from accounts.actions import user_link_sso
from accounts.factors import second_factor_at
from audit.events import Action
from audit.models import AuditEvent
from custos_testing.totp import fresh_code
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _second_factors(client) -> list[dict]:
    return [record for record in client.session.get("account_authentication_methods", []) if record["method"] == "mfa"]


def _enrolled_and_linked(sso, username: str, **idp_fields) -> tuple:
    """A Custos user with an authenticator app, linked to a person at the provider."""
    user = make_user(username, [])
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    user_link_sso(actor=None, user=user, provider="sso", sub=sso.person(f"{username}.idp", **idp_fields))
    return user, secret


def test_the_providers_second_factor_counts_and_is_recorded(sso, client):
    sso.person("amr.sso", groups=["idp-legal"], second_factor=True)
    response = sso.sign_in(client, "amr.sso")
    assert response.status_code == 302 and response["Location"] == "/"
    assert [record["type"] for record in _second_factors(client)] == ["sso"]
    passed = AuditEvent.objects.get(action=Action.AUTH_SECOND_FACTOR_PASSED)
    assert passed.details == {"method": "sso"} and passed.actor.username == "amr.sso"
    request = type("R", (), {"session": client.session, "user": passed.actor})()
    assert second_factor_at(request) is not None


def test_an_acr_on_the_configured_list_counts(sso, client, settings):
    settings.CUSTOS_SSO = {**settings.CUSTOS_SSO, "SECOND_FACTOR_ACR": ["urn:example:loa:2"]}
    sso.person("acr.sso", second_factor=False, acr="urn:example:loa:2")
    sso.sign_in(client, "acr.sso")
    assert [record["type"] for record in _second_factors(client)] == ["sso"]
    sso.person("acr.sso", acr="urn:example:loa:1")
    client.logout()
    sso.sign_in(client, "acr.sso")
    assert _second_factors(client) == []


def test_a_password_only_sign_on_records_no_second_factor(sso, client):
    sso.person("pwd.sso", groups=["idp-investigators"], second_factor=False)
    sso.sign_in(client, "pwd.sso")
    assert client.session.get("_auth_user_id") and _second_factors(client) == []
    assert not AuditEvent.objects.filter(action=Action.AUTH_SECOND_FACTOR_PASSED).exists()


def test_an_enrolled_user_is_not_asked_again_after_the_providers_second_factor(sso, client):
    user, _ = _enrolled_and_linked(sso, "enrolled-amr", second_factor=True)
    response = sso.sign_in(client, "enrolled-amr.idp")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(user.pk)


def test_without_the_providers_second_factor_custos_asks_for_its_own(sso, client):
    user, secret = _enrolled_and_linked(sso, "enrolled-pwd", second_factor=False)
    response = sso.sign_in(client, "enrolled-pwd.idp")
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session  # the provider's password alone signs in nothing
    assert client.get("/").status_code == 302
    response = client.post(reverse("mfa_authenticate"), {"code": fresh_code(secret)})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)
    passed = AuditEvent.objects.get(action=Action.AUTH_SECOND_FACTOR_PASSED)
    assert passed.details == {"method": "totp"}
    login = AuditEvent.objects.get(action=Action.AUTH_LOGIN, actor=user)
    assert login.details["method"] == "sso"
