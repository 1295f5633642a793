"""Single sign-on through a real browser against the test identity provider (tests/oidc_provider):
a second factor asserted by the provider lands signed in; without one, Custos asks for its own."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.actions import user_link_sso
from accounts.models import User
from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from custos_testing.totp import fresh_code
from tests.conftest import make_user, persona_secret
from tests.sso.conftest import IDP_PASSWORD, configure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider(identity_provider, live_server, settings):
    configure(settings, identity_provider, base_url=live_server.url)
    return identity_provider


def _sign_in_at_the_provider(journey, provider, username: str) -> None:
    page = journey.page
    with journey.step("login-page"):
        page.goto("/accounts/login/")
        page.get_by_role("button", name="Sign in with Test IdP").click()
        page.wait_for_url(f"{provider.url}/**")
    with journey.step("provider-sign-in"):
        page.get_by_label("IdP username").fill(username)
        page.get_by_label("IdP password").fill(IDP_PASSWORD)
        page.get_by_role("button", name="Sign in at the IdP").click()
        page.wait_for_url(lambda url: not url.startswith(provider.url))


def test_sign_on_with_the_providers_second_factor_lands_signed_in(journey, provider, live_server):
    provider.add_user("rita.sso", IDP_PASSWORD, email="rita@idp.example.org", groups=["idp-legal"], second_factor=True)
    _sign_in_at_the_provider(journey, provider, "rita.sso")
    page = journey.page
    with journey.step("signed-in"):
        expect(page.get_by_text("Legal reviewer").first).to_be_visible()
        assert page.url == f"{live_server.url}/"
    rita = User.objects.get(username="rita.sso")
    assert rita.roles_sorted == ["legal_reviewer"]
    assert AuditEvent.objects.get(action=Action.AUTH_LOGIN, actor=rita).details["method"] == "sso"
    assert AuditEvent.objects.get(action=Action.AUTH_SECOND_FACTOR_PASSED, actor=rita).details == {"method": "sso"}


def test_sign_on_without_the_providers_second_factor_asks_for_custos_own(journey, provider, live_server):
    # A reviewer with an authenticator app in Custos, linked to their identity at the provider,
    # signs in there with a password only: Custos asks for its own code before anything opens.
    reviewer = make_user("sam.reviewer", [Role.LEGAL_REVIEWER])  # enrolled with the persona's secret
    secret = persona_secret(reviewer.username)
    sub = provider.add_user("sam.idp", IDP_PASSWORD, email="sam@idp.example.org", groups=["idp-legal"])
    user_link_sso(actor=None, user=reviewer, provider="sso", sub=sub)
    _sign_in_at_the_provider(journey, provider, "sam.idp")
    page = journey.page
    with journey.step("asked-for-the-custos-code"):
        expect(page.get_by_role("heading", name="Second factor")).to_be_visible()
        assert page.url == f"{live_server.url}{reverse('mfa_authenticate')}"
    with journey.step("code-entered"):
        page.get_by_label("Code").fill(fresh_code(secret))
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_text("Signed in as")).to_be_visible()
        expect(page.get_by_text("Legal reviewer").first).to_be_visible()
    assert AuditEvent.objects.get(action=Action.AUTH_SECOND_FACTOR_PASSED, actor=reviewer).details == {"method": "totp"}
    assert AuditEvent.objects.get(action=Action.AUTH_LOGIN, actor=reviewer).details == {"method": "sso", "sub": sub}
