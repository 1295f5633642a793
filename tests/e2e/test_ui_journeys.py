"""Everyday-UI journeys (issue 19) in Chromium: lists with sort and filter, breadcrumbs, the
notification centre; axe-core finds no serious or critical violation on any page visited, and
the start pages are saved as screenshots under test-output/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from investigations import actions
from tests.investigations.fixtures import file_request, open_case_for

from .axe import assert_accessible
from .conftest import OUTPUT, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]


@pytest.fixture
def world(store, lead, member, reviewer, second_reviewer):
    fraud = open_case_for(lead, reviewer, team=[member], title="Expense fraud", case_type="fraud")
    leak = open_case_for(lead, reviewer, title="Press leak", case_type="misconduct")
    granted = actions.request_submit(actor=lead, request=file_request(fraud, lead))
    actions.request_decide(actor=second_reviewer, request=granted, outcome="approve")
    granted.refresh_from_db()
    query = actions.query_execute_now(actor=lead, grant=granted.grant, category="profile")
    returned = actions.request_submit(actor=lead, request=file_request(leak, lead, subjects=("3",)))
    actions.request_decide(actor=reviewer, request=returned, outcome="return", reason="Narrow the window to March.")
    return {"fraud": fraud, "leak": leak, "grant": granted.grant, "query": query, "returned": returned}


def test_lists_sort_and_filter_with_breadcrumbs(journey, live_server, world):
    page = journey.page
    with journey.step("investigator start page"):
        journey.login("lead")
        expect(page.get_by_role("heading", name="Returned for changes")).to_be_visible()
        assert_accessible(page)
    with journey.step("case list filtered by type in the URL"):
        journey.nav("My cases")
        page.get_by_label("Type").select_option("misconduct")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**case_type=misconduct**")
        expect(page.get_by_role("status").filter(has_text="match")).to_contain_text("1 of 2 cases match")
        expect(page.locator("tbody tr")).to_have_count(1)
        assert_accessible(page)
    with journey.step("case list sorted by title, then the other way"):
        page.goto("/cases/")
        page.get_by_role("link", name="Title").click()
        expect(page.locator("tbody tr").first).to_contain_text("Expense fraud")
        page.get_by_role("link", name="Title").click()
        expect(page.locator("tbody tr").first).to_contain_text("Press leak")
        expect(page.locator("th[aria-sort='descending']")).to_contain_text("Title")
        assert_accessible(page)
    with journey.step("case page lists its grant and query"):
        page.get_by_role("link", name=world["fraud"].reference).click()
        expect(page.get_by_role("link", name=f"Grant {world['grant'].pk}")).to_be_visible()
        assert_accessible(page)
        page.get_by_role("link", name=f"Query #{world['query'].pk}").click()
    with journey.step("breadcrumbs walk back from the query"):
        crumbs = page.get_by_role("navigation", name="Breadcrumb")
        expect(crumbs.get_by_role("link")).to_have_text(
            [
                "Cases",
                world["fraud"].reference,
                f"Request {world['grant'].request_id}",
                f"Grant {world['grant'].pk}",
                f"Query #{world['query'].pk}",
            ]
        )
        assert_accessible(page)
        crumbs.get_by_role("link", name=f"Grant {world['grant'].pk}").click()
        page.wait_for_url(f"**/grants/{world['grant'].pk}/")
        expect(page.get_by_label("From")).to_have_value(world["grant"].window_start.isoformat())
        # durations in words: a 24-hour grant shows "(23 hours 59 minutes left)"
        expect(page.locator("[data-countdown-left]").first).to_have_text(re.compile(r"\(23 hours \d+ minutes? left\)"))
        assert_accessible(page)
    with journey.step("grant list filtered by status"):
        journey.nav("My grants")
        page.get_by_label("Status").select_option("active")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("tbody tr")).to_have_count(1)
        assert_accessible(page)


def test_notification_centre(journey, live_server, world, auditor):
    page = journey.page
    with journey.step("unread count in the header"):
        journey.login("lead")
        link = page.get_by_role("link", name="Notifications")
        expect(link).to_contain_text("2 unread")  # the approval and the return
    with journey.step("the centre lists the return with its reason"):
        link.click()
        item = page.get_by_role("link", name="Narrow the window to March.")
        expect(item).to_be_visible()
        assert_accessible(page)
    with journey.step("opening it marks it read and lands on the edit form"):
        item.click()
        page.wait_for_url(f"**/requests/{world['returned'].pk}/edit/")
        expect(page.get_by_role("heading", name="Returned for changes")).to_be_visible()
        assert_accessible(page)
        expect(page.get_by_role("link", name="Notifications")).to_contain_text("1 unread")
    journey.logout()
    actions.request_submit(actor=world["fraud"].lead, request=file_request(world["fraud"], world["fraud"].lead))
    with journey.step("the reviewer's navigation shows the review queue size; start page"):
        journey.login("reviewer")
        queue = page.get_by_role("navigation", name="Main").get_by_role("listitem").filter(has_text="Review queue")
        expect(queue.locator(".badge")).to_have_text("1 request waiting")
        assert_accessible(page)
    with journey.step("auditor start page and audit targets in words"):
        journey.logout()
        journey.login("auditor")
        assert_accessible(page)
        page.goto("/audit/?target_type=investigations.dataquery")
        expect(
            page.get_by_role("link", name=f"Query #{world['query'].pk} on {world['fraud'].reference}").first
        ).to_be_visible()
        assert_accessible(page)


def test_decide_page_reads_at_390_px(browser, live_server, world, second_reviewer):
    from tests.investigations.fixtures import file_request as new_request

    pending = actions.request_submit(
        actor=world["fraud"].lead, request=new_request(world["fraud"], world["fraud"].lead)
    )
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, second_reviewer.username)
        page.goto(f"/requests/{pending.pk}/decide/")
        expect(page.get_by_role("heading", name=f"Decide data-pull request {pending.pk}")).to_be_visible()
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the decide page is {overflow}px wider than a 390 px screen"
        page.screenshot(path=str(OUTPUT / "decide-390px.png"), full_page=True)
        assert_accessible(page)
    finally:
        context.close()
