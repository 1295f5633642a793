"""Lockout through the real login page in Chromium, and its message."""

import pytest
from playwright.sync_api import expect

from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _try(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_lockout_and_its_message(journey, lead, settings):
    page = journey.page
    with journey.step("wrong passwords up to the limit"):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            _try(page, "lead", "not the password")
            expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    with journey.step("the last wrong password locks sign-in"):
        _try(page, "lead", "not the password")
        expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-in attempts")
    with journey.step("the right password is refused too, with the same message"):
        page.get_by_role("link", name="Back to the login page").click()
        _try(page, "lead", PASSWORD)
        expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
        page.goto("/")
        assert "/accounts/login/" in page.url  # not signed in
    assert AuditEvent.objects.filter(action=Action.AUTH_LOCKED_OUT).count() == 1
