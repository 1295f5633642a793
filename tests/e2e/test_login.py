import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_shows_roles_and_logout_returns_to_login(journey, lead):
    page = journey.page
    page.goto("/")
    assert "/accounts/login/" in page.url  # every page needs a login
    journey.shot("login-page")
    page.get_by_label("Username").fill("lead")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()  # waits for the answer; is_visible() would race it
    journey.shot("failed-login")
    journey.login("lead")
    expect(page.get_by_text("investigator").first).to_be_visible()
    journey.shot("home")
    journey.logout()
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("auth.login_failed") == 1
    assert actions.count("auth.login") == 1 and actions.count("auth.logout") == 1
