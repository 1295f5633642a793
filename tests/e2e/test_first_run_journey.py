"""The first run in Chromium: the demo story (``seed_demo``'s cases, built through the actions),
then each role's start page and the lists that role works from, sorted and filtered; a form's
error summary and the time-zone setting. axe-core finds no serious or critical violation on any
page visited; the start pages are saved under test-output/screenshots/start-pages/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from investigations.demo import seed_story
from tests.conftest import make_user

from .axe import assert_accessible
from .conftest import OUTPUT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]

START_PAGES = OUTPUT / "start-pages"


@pytest.fixture
def demo(store):
    """seed_demo's users (the suite's password) and its story."""
    people = {
        "ines": make_user("ines", [Role.INVESTIGATOR]),
        "omar": make_user("omar", [Role.INVESTIGATOR]),
        "lena": make_user("lena", [Role.LEGAL_REVIEWER]),
        "sam": make_user("sam", [Role.LEGAL_REVIEWER, Role.SENIOR_LEGAL_REVIEWER]),
        "aude": make_user("aude", [Role.AUDITOR]),
        "adam": make_user("adam", is_staff=True),
    }
    return dict(zip(("pending", "open", "protected", "closed"), seed_story(people), strict=True))


def _start_page(journey, username: str) -> None:
    journey.login(username)
    expect(journey.page.get_by_role("heading", level=1)).to_be_visible()
    assert_accessible(journey.page)
    START_PAGES.mkdir(parents=True, exist_ok=True)
    journey.page.screenshot(path=str(START_PAGES / f"{username}.png"), full_page=True)


def test_first_run_demo_start_pages_and_the_lists_of_each_role(journey, live_server, demo):
    page = journey.page
    with journey.step("investigator: the open case's grant and the pending case on the start page"):
        _start_page(journey, "ines")
        expect(page.get_by_role("link", name=demo["pending"].reference).first).to_be_visible()
        expect(page.get_by_role("link", name=demo["open"].reference).first).to_be_visible()
    with journey.step("a form sent empty: the error summary takes the focus and leads to the field"):
        journey.nav("New case")
        page.get_by_role("button", name="Open case").click()
        summary = page.locator("[data-error-summary]")
        expect(summary).to_be_focused()
        expect(page.get_by_text("(required)").first).to_be_visible()
        assert_accessible(page)
        summary.get_by_role("link", name="Title", exact=False).first.click()
        expect(page.get_by_label("Title")).to_be_focused()
    with journey.step("the time zone, set on the settings page, is named in the footer"):
        page.get_by_role("link", name="Settings").click()
        page.get_by_label("Time zone").select_option("Europe/Lisbon")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("contentinfo")).to_contain_text("times in Europe/Lisbon")
        assert_accessible(page)
    journey.logout()

    with journey.step("legal reviewer: the case to approve and the request to decide"):
        _start_page(journey, "lena")
        expect(page.get_by_role("link", name=demo["pending"].reference).first).to_be_visible()
    with journey.step("review queue filtered and sorted in the URL"):
        journey.nav("Review queue")
        expect(page.get_by_role("status").filter(has_text="wait")).to_contain_text("1 request waits for you")
        page.get_by_label("Protected subjects").select_option("yes")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**protected=yes**")
        expect(page.get_by_text("No request in your queue matches these filters.")).to_be_visible()
        assert_accessible(page)
    with journey.step("her decisions, sorted by case"):
        journey.nav("Decisions")
        page.get_by_role("link", name="Case", exact=True).click()
        page.wait_for_url("**sort=case**")
        expect(page.locator("tbody tr")).to_have_count(2)  # INV-...-0002's grant and INV-...-0003's first approval
        assert_accessible(page)
    journey.logout()

    with journey.step("senior reviewer: the journalist's request awaits his approval"):
        _start_page(journey, "sam")
        journey.nav("Review queue")
        page.get_by_label("Protected subjects").select_option("yes")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody tr").first).to_contain_text("protected")
        expect(page.locator("tbody tr").first).to_contain_text("1 of 2 (one senior)")
        assert_accessible(page)
    journey.logout()

    with journey.step("auditor: today's events, the alerts by severity, the trail oldest first"):
        _start_page(journey, "aude")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()  # "Alerts 4": the badge
        page.get_by_role("link", name="Severity", exact=True).click()
        page.wait_for_url("**sort=severity**")
        expect(page.locator("tbody tr").first).to_contain_text("critical", ignore_case=True)
        assert_accessible(page)
        journey.nav("Audit trail")
        page.get_by_role("link", name="When", exact=False).first.click()
        page.wait_for_url("**sort=seq**")
        expect(page.get_by_role("status").filter(has_text="first")).to_contain_text("oldest first")
        assert_accessible(page)
    with journey.step("the scope report of the closed case"):
        journey.nav("Scope reports")
        expect(page.get_by_text(demo["closed"].reference).first).to_be_visible()
        assert_accessible(page)
    journey.logout()

    with journey.step("omar: his closed case and the case the journalist's request is on"):
        _start_page(journey, "omar")
        expect(page.get_by_role("link", name=demo["protected"].reference).first).to_be_visible()
    journey.logout()
    with journey.step("admin start page"):
        _start_page(journey, "adam")
