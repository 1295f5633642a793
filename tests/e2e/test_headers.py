"""The pages work in Chromium under the Content-Security-Policy: nothing is refused."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "userdata"])]


def _refusals(page) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    return messages


def test_pages_scripts_and_api_docs_run_under_the_csp(journey, migrated_rows, store, active_grant, lead, superuser):
    page = journey.page
    console = _refusals(page)
    with journey.step("grant page: the countdown script runs"):
        journey.login("lead")
        page.goto(reverse("investigations:grant_detail", args=[active_grant.pk]))
        expect(page.locator("[data-countdown-left]").first).to_contain_text("left")
    with journey.step("API docs: Swagger UI starts from its script file"):
        page.goto(reverse("api-docs"))
        expect(page.locator(".swagger-ui .info")).to_be_visible()
    page.goto("/")
    journey.logout()
    with journey.step("admin pages"):
        journey.login(superuser.username)
        page.goto(reverse("admin:accounts_user_changelist"))
        expect(page.locator("#result_list")).to_be_visible()
    refused = [text for text in console if "Content Security Policy" in text]
    assert refused == []
