"""The idle timeout ends a session in a real browser."""

import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from audit.events import Action
from audit.models import AuditEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_idle_timeout_ends_a_session(journey, lead, settings):
    settings.SESSION_IDLE_TIMEOUT = timedelta(seconds=3)
    page = journey.page
    with journey.step("signed in, pages open while active"):
        journey.login("lead")
        journey.nav("My cases")
        expect(page.get_by_role("heading", name="My cases")).to_be_visible()
    with journey.step("after the idle timeout the next page asks to log in"):
        time.sleep(3.5)
        journey.nav("My grants")
        page.wait_for_url("**/accounts/login/**")
        expect(page.get_by_label("Username")).to_be_visible()
        assert "next=/grants/" in page.url
    with journey.step("logging in again returns to the page asked for"):
        page.get_by_label("Username").fill("lead")
        page.get_by_label("Password").fill("a-long-test-password-42")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/grants/")
    logout = AuditEvent.objects.filter(action=Action.AUTH_LOGOUT).get()
    assert logout.details == {"reason": "idle"}
