"""A security key in Chromium (its virtual authenticator, driven over the DevTools protocol):
a legal reviewer signs in with the password and an authenticator code, adds a key, signs out,
signs in with the password and the key (no code), and later confirms an approval with the key
when the step-up asks, the reasons typed before it kept; then removes the key, confirming it is
them with the key. Every step is on the ledger, and
allauth's WebAuthn scripts run under the Content-Security-Policy (no violation reported).

WebAuthn's relying party is a domain: the live server is reached as http://localhost."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from playwright.sync_api import expect

from audit.events import Action
from audit.models import AuditEvent
from investigations.models import Decision, RequestStatus
from tests.conftest import PASSWORD
from tests.stepup import age_second_factor, unused_code

from .axe import assert_accessible

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]

REASONS = "Two accounts for thirty days answer the question. Typed before the key was asked for."


def _virtual_key(page):
    """A USB security key with a PIN (user verification), present in the browser from now on;
    the DevTools session that holds it."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "usb",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
    }
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp


def _password(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/accounts/2fa/authenticate/")


def _events(action: Action, user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("seq"))


@pytest.mark.timeout(300)
def test_a_reviewer_adds_a_key_signs_in_with_it_and_confirms_an_approval_with_it(
    journey, live_server, submitted_request, second_reviewer
):
    assert live_server.url.startswith("http://localhost:"), live_server.url
    page = journey.page
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    devtools = _virtual_key(page)  # noqa: F841  (held for the whole journey)
    reviewer = second_reviewer
    with journey.step("sign in with the password and an authenticator code"):
        _password(page, reviewer.username)
        page.get_by_label("Code").fill(unused_code(reviewer))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(lambda url: "/accounts/2fa/" not in url)
        expect(page.get_by_text("Signed in as")).to_be_visible()
    with journey.step("second factor page: add a security key, confirming it is them first"):
        page.goto("/accounts/2fa/")
        page.get_by_role("link", name="Add a security key or passkey").click()
        page.wait_for_url("**/accounts/reauthenticate/**")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_url("**/accounts/2fa/webauthn/add/")
        assert_accessible(page)
        page.get_by_label("Name", exact=True).fill("Desk key")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_text("Security key added.")).to_be_visible()  # then the recovery codes, if new
        page.goto("/accounts/2fa/")
        expect(page.get_by_text("1 key added.")).to_be_visible()
        key = Authenticator.objects.get(user=reviewer, type=Authenticator.Type.WEBAUTHN)
        assert key.wrap().name == "Desk key"
        added = _events(Action.AUTH_FACTOR_ADDED, reviewer)
        assert "webauthn" in [event.details["type"] for event in added]
        journey.logout()
    with journey.step("sign in with the password and the key: no code typed"):
        _password(page, reviewer.username)
        assert_accessible(page)
        page.get_by_role("button", name="Use a security key").click()
        page.wait_for_url(lambda url: "/accounts/2fa/" not in url)
        expect(page.get_by_text("Signed in as")).to_be_visible()
        assert _events(Action.AUTH_SECOND_FACTOR_PASSED, reviewer)[-1].details == {"method": "webauthn"}
        assert _events(Action.AUTH_LOGIN, reviewer)
    with journey.step("reading past the step-up window, approve with reasons: asked to confirm"):
        session_key = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "sessionid")
        age_second_factor(None, session_key=session_key)
        page.goto(f"/requests/{submitted_request.pk}/decide/")
        page.get_by_label("Approve", exact=True).check()
        page.get_by_label("Reason", exact=True).fill(REASONS)
        page.get_by_role("button", name="Record decision").click()
        expect(page.get_by_role("alert")).to_contain_text("Nothing was saved yet")
        expect(page.get_by_label("Reason", exact=True)).to_have_value(REASONS)
        assert not Decision.objects.filter(request=submitted_request).exists()
        assert_accessible(page)
    with journey.step("confirm with the key: the approval completes with the reasons"):
        page.get_by_role("button", name="Use a security key instead").click()
        expect(page.get_by_role("status").filter(has_text="Decision recorded")).to_be_visible()
        decision = Decision.objects.get(request=submitted_request)
        assert decision.reason == REASONS and decision.reviewer == reviewer
        submitted_request.refresh_from_db()
        assert submitted_request.status == RequestStatus.APPROVED
        passed = _events(Action.AUTH_SECOND_FACTOR_PASSED, reviewer)[-1]
        assert passed.details == {"method": "step_up", "factor": "webauthn"}
    with journey.step("manage keys: listed; removing it asks to confirm with the key; the app remains"):
        page.goto("/accounts/2fa/")
        page.get_by_role("link", name="Manage keys").click()
        expect(page.locator("tbody td").first).to_have_text("Desk key")
        assert_accessible(page)
        page.get_by_role("link", name="Remove Desk key").click()
        page.wait_for_url("**/accounts/reauthenticate/**")  # a new session: confirm it is them, with the key
        page.get_by_role("link", name="Use a security key").click()
        page.wait_for_url("**/accounts/2fa/webauthn/reauthenticate/**")
        assert_accessible(page)
        page.get_by_role("button", name="Use a security key").click()
        page.wait_for_url(lambda url: "reauthenticate" not in url and url.endswith("/remove/"))
        assert _events(Action.AUTH_SECOND_FACTOR_PASSED, reviewer)[-1].details == {"method": "webauthn"}
        page.get_by_role("button", name="Remove").click()
        expect(page.get_by_text("No security key or passkey yet.")).to_be_visible()
        removed = _events(Action.AUTH_FACTOR_REMOVED, reviewer)
        assert [event.details["type"] for event in removed] == ["webauthn"]
    refused = [text for text in console if "Content Security Policy" in text]
    assert not refused, refused
    assert not _events(Action.AUTH_SECOND_FACTOR_FAILED, reviewer)
