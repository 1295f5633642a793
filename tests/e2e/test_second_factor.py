"""Browser journeys of second factors: a reviewer's first sign-in takes them through TOTP
enrolment (the code computed here from the secret the page shows), the next sign-in asks for a
code, and a recovery code works once."""

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from custos_testing.totp import fresh_code
from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _password(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_first_sign_in_enrols_totp_then_the_code_is_asked_and_a_recovery_code_works_once(journey):
    make_user("newcomer", [Role.LEGAL_REVIEWER], enrolled=False)
    page = journey.page
    with journey.step("first sign-in: taken to enrolment, nothing else opens"):
        _password(page, "newcomer")
        page.wait_for_url("**/accounts/2fa/")
        expect(page.get_by_role("alert")).to_contain_text("Your role needs a second factor")
        page.goto("/review/")
        page.wait_for_url("**/accounts/2fa/")
    with journey.step("set up an authenticator app with the secret shown"):
        page.get_by_role("link", name="Set up an authenticator app").click()
        secret = page.get_by_label("Secret").input_value()
        page.get_by_label("Code from the app").fill(fresh_code(secret))
        page.get_by_role("button", name="Set up").click()
        page.wait_for_url("**/accounts/2fa/recovery-codes/")
        codes = page.locator("#recovery_codes").inner_text().split()
        assert len(codes) == 10
    with journey.step("everything opens"):
        page.goto("/review/")
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        journey.logout()
    with journey.step("next sign-in: the password alone is not enough"):
        _password(page, "newcomer")
        page.wait_for_url("**/accounts/2fa/authenticate/")
        page.goto("/review/")  # not signed in: back to the pending sign-in's code page
        page.wait_for_url("**/accounts/2fa/authenticate/")
        expect(page.get_by_text("Signed in as")).to_have_count(0)
    with journey.step("a wrong code is refused, the right one signs in"):
        page.get_by_label("Code").fill("000000")
        page.get_by_role("button", name="Verify").click()
        expect(page.locator(".field-error")).to_be_visible()
        page.get_by_label("Code").fill(fresh_code(secret))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(lambda url: "/accounts/2fa/" not in url)
        expect(page.get_by_text("Signed in as")).to_be_visible()
        journey.logout()
    with journey.step("a recovery code works once"):
        _password(page, "newcomer")
        page.get_by_label("Code").fill(codes[0])
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(lambda url: "/accounts/2fa/" not in url)
        journey.logout()
        _password(page, "newcomer")
        page.get_by_label("Code").fill(codes[0])
        page.get_by_role("button", name="Verify").click()
        expect(page.locator(".field-error")).to_be_visible()
    methods = [event.details["method"] for event in AuditEvent.objects.filter(action=Action.AUTH_SECOND_FACTOR_PASSED)]
    assert methods == ["totp", "recovery_codes"]
