import pytest

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
    assert page.get_by_role("alert").is_visible()
    journey.shot("failed-login")
    journey.login("lead")
    assert page.get_by_text("investigator").first.is_visible()
    journey.shot("home")
    journey.logout()
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("auth.login_failed") == 1
    assert actions.count("auth.login") == 1 and actions.count("auth.logout") == 1
