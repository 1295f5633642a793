"""The seven journeys of the web application, in Chromium, against a live server and a real worker.

Each step is named (``journey.step``): it leaves a screenshot under
test-output/screenshots/<test>/, and a failure says which step broke.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from investigations import actions
from investigations.models import Case, DataPullRequest, DataQuery, Decision, Grant, QueryStatus, RequestStatus
from tests.investigations.fixtures import JUSTIFICATION, file_request, open_case_for


def label(text: str) -> re.Pattern:
    """A field's label exactly, with or without the "(required)" mark of a required field (a
    regular expression sees the label's text unnormalised: a checkbox's starts with a newline)."""
    return re.compile(rf"^\s*{re.escape(text)}( \(required\))?\s*$")


pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]

QUERY_WAIT_MS = 120_000


def direct_post(page, url: str, form: dict):
    """POST as the logged-in browser would, with its session and CSRF token, bypassing the page."""
    token = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    return page.request.post(
        url, form={**form, "csrfmiddlewaretoken": token}, headers={"Referer": page.url}, max_redirects=0
    )


@pytest.mark.worker
@pytest.mark.timeout(900)
def test_journeys_1_to_6_case_to_audit(
    journey, live_server, celery_worker_process, store, lead, reviewer, other_investigator, auditor
):
    page = journey.page
    urls: dict[str, str] = {}

    # --- 1: open a case; legal approves it; file a request naming two accounts and two categories
    with journey.step("1a investigator opens a case"):
        journey.login("lead")
        journey.nav("New case")
        page.get_by_label(label("Title")).fill("Leak of the board minutes")
        page.get_by_label(label("Allegation")).fill("The March board minutes reached a newspaper.")
        page.get_by_label(label("Type")).select_option("fraud")
        page.get_by_label(label("Purpose")).fill("Find which internal account forwarded the minutes.")
        page.get_by_role("button", name="Open case").click()
        expect(page.get_by_role("status")).to_contain_text("waits for legal approval")
        case = Case.objects.get()
        urls["case"] = page.url
        assert urls["case"].endswith(f"/cases/{case.pk}/")
    journey.logout()
    with journey.step("1b legal reviewer approves the case"):
        journey.login("reviewer")
        journey.nav("Cases to approve")
        page.locator("section.card", has_text=case.reference).get_by_role("button", name="Approve").click()
        expect(page.get_by_role("status")).to_contain_text(f"Case {case.reference} approved")
        case.refresh_from_db()
        assert case.status == "open"
    journey.logout()
    with journey.step("1c investigator files a request: two accounts, two categories"):
        journey.login("lead")
        page.goto(urls["case"])
        page.get_by_role("link", name="New data-pull request").click()
        page.get_by_label(label("Subjects")).fill("1\n2")
        page.get_by_label(label("IP logs")).check()
        page.get_by_label(label("Profile")).check()
        today = timezone.now().date()
        page.get_by_label(label("Window start")).fill((today - timedelta(days=90)).isoformat())
        page.get_by_label(label("Window end")).fill(today.isoformat())
        page.get_by_label(label("Justification")).fill(JUSTIFICATION)
        page.get_by_label(label("Legal basis")).select_option("internal_policy")
        page.get_by_label("Requested grant duration (hours)").fill("24")
        page.get_by_role("button", name="Save draft").click()
        page.get_by_role("button", name="Submit to legal").click()
        expect(page.get_by_role("status")).to_contain_text("Submitted to legal")
        data_request = DataPullRequest.objects.get()
        assert data_request.status == RequestStatus.SUBMITTED
        assert data_request.subjects == [1, 2] and sorted(data_request.categories) == ["ip_logs", "profile"]
        urls["request"] = page.url

    # --- 2: the requester cannot approve: no button, and a direct POST is refused
    with journey.step("2 requester cannot approve"):
        expect(page.get_by_role("link", name="Decide")).to_have_count(0)
        expect(page.get_by_role("button", name="Record decision")).to_have_count(0)
        response = direct_post(page, f"/requests/{data_request.pk}/decide/", {"outcome": "approve"})
        assert response.status == 403, response.status
        assert "You filed this request" in response.text()
        assert not Decision.objects.exists() and not Grant.objects.exists()
    journey.logout()

    # --- 3: a legal reviewer narrows it to one category and approves
    with journey.step("3 reviewer narrows to one category and approves"):
        journey.login("reviewer")
        journey.nav("Review queue")
        page.get_by_role("link", name=f"Request {data_request.pk}").click()
        expect(page.get_by_role("heading", name="Requested and approved, side by side")).to_be_visible()
        page.get_by_label(label("Approve, narrowed")).check()
        page.get_by_label(label("Reason")).fill("IP logs answer the question; the profile is not needed.")
        page.locator('input[name="categories"][value="profile"]').uncheck()
        page.get_by_role("button", name="Record decision").click()
        expect(page.get_by_role("status")).to_contain_text("Decision recorded")
        grant = Grant.objects.get()
        assert grant.categories == ["ip_logs"] and grant.subjects == [1, 2]
    journey.logout()

    # --- 4: the investigator runs a query, watches it finish without reloading, reads and downloads
    with journey.step("4a investigator runs a query from the grant page"):
        journey.login("lead")
        journey.nav("My grants")
        page.get_by_role("link", name=f"Grant {grant.pk}").click()
        urls["grant"] = page.url
        expect(page.locator("[data-countdown-left]")).to_contain_text("left")
        category = page.get_by_label("Data category")
        assert category.locator("option").all_inner_texts() == ["IP logs"]  # the form offers only the scope
        category.select_option("ip_logs")
        page.get_by_role("button", name="Run query").click()
        page.wait_for_url("**/queries/*/")
    with journey.step("4b the query finishes without a reload"):
        page.evaluate("window.__same_page = true")
        expect(page.locator('#query-status [data-field="status"]')).to_have_text("Succeeded", timeout=QUERY_WAIT_MS)
        assert page.evaluate("window.__same_page === true"), "the page was reloaded"
        query = DataQuery.objects.get()
        assert query.status == QueryStatus.SUCCEEDED and query.row_count
        expect(page.locator('#query-status [data-field="digest"]')).to_have_text(query.digest)
    with journey.step("4c results show the digest and say the view is recorded"):
        page.get_by_role("link", name="View results").click()
        urls["results"] = page.url
        expect(page.get_by_text("This view is recorded in the audit trail.")).to_be_visible()
        expect(page.get_by_text(query.digest)).to_be_visible()
    with journey.step("4d download the results as CSV"):
        with page.expect_download() as download:
            page.get_by_role("link", name="Download CSV").click()
        rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
        assert len(rows) == query.row_count + 1
    journey.logout()

    # --- 5: an investigator off the case sees "not found" for all of it
    with journey.step("5 outsider investigator gets not found"):
        journey.login("other_investigator")
        for name in ("case", "request", "grant", "results"):
            response = page.goto(urls[name])
            assert response.status == 404, f"{name} page answered {response.status}"
            expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    journey.logout()

    # --- 6: the auditor finds every step in the trail, filtered by the case reference, and exports it
    expected = {
        "case.opened",
        "case.approved",
        "request.created",
        "request.submitted",
        "decision.recorded",
        "grant.issued",
        "query.requested",
        "query.completed",
        "results.viewed",
        "results.downloaded",
    }
    with journey.step("6a auditor filters the trail by the case reference"):
        journey.login("auditor")
        journey.nav("Audit trail")
        page.get_by_label("Case reference").fill(case.reference)
        page.get_by_role("button", name="Filter").click()
        shown = set(page.locator("table tbody td:nth-child(4) .mono").all_inner_texts())
        assert expected <= shown, f"missing from the trail: {sorted(expected - shown)}"
        assert set(page.locator("table tbody td:nth-child(6)").all_inner_texts()) == {case.reference}
    with journey.step("6b auditor exports the filtered trail"):
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
        assert {row["case_reference"] for row in exported} == {case.reference}
        assert expected <= {row["action"] for row in exported}


@pytest.mark.timeout(600)
def test_journey_7_protected_subject_needs_a_senior_second_approval(
    journey, live_server, store, lead, reviewer, second_reviewer, senior_reviewer, admin_user
):
    page = journey.page
    actions.protected_subject_add(actor=admin_user, account_id=1, category="journalist")
    case = open_case_for(lead, second_reviewer)
    data_request = actions.request_submit(actor=lead, request=file_request(case, lead, legal_basis="legal_process"))
    assert data_request.is_protected

    def approve_with_confirmation(username: str) -> None:
        journey.login(username)
        journey.nav("Review queue")
        row = page.locator("tr", has_text=f"Request {data_request.pk}")
        expect(row.get_by_text("protected")).to_be_visible()
        row.get_by_role("link", name=f"Request {data_request.pk}").click()
        page.get_by_label(label("Approve")).check()
        page.get_by_role("button", name="Record decision").click()
        expect(page.get_by_text("Oversight is notified of this approval")).to_be_visible()
        journey.shot(f"{username}-confirmation")
        page.get_by_role("button", name="Confirm approval").click()
        expect(page.get_by_role("status")).to_contain_text("Decision recorded")

    with journey.step("7a first approval by a legal reviewer, after the confirmation"):
        approve_with_confirmation("reviewer")
        expect(
            page.get_by_text("Still needed before a grant exists: one approval by a senior legal reviewer")
        ).to_be_visible()
        assert not Grant.objects.exists()
    journey.logout()
    with journey.step("7b no grant for the investigator yet"):
        journey.login("lead")
        journey.nav("My grants")
        expect(page.get_by_text("No grants.")).to_be_visible()
    journey.logout()
    with journey.step("7c the senior reviewer's approval makes the grant"):
        approve_with_confirmation("senior_reviewer")
        grant = Grant.objects.get()
        expect(page.get_by_role("link", name=f"grant {grant.pk}")).to_be_visible()
    journey.logout()
    with journey.step("7d the investigator sees the grant"):
        journey.login("lead")
        journey.nav("My grants")
        expect(page.get_by_role("link", name=f"Grant {grant.pk}")).to_be_visible()


@pytest.mark.timeout(300)
def test_invalid_case_form_shows_field_errors_and_saves_nothing(journey, live_server, lead):
    page = journey.page
    with journey.step("fill the case form without a title"):
        journey.login("lead")
        journey.nav("New case")
        page.get_by_label(label("Allegation")).fill("Kept after the error.")
        page.get_by_label(label("Type")).select_option("fraud")
        page.get_by_role("button", name="Open case").click()
    with journey.step("the error is next to the title and the other values are kept"):
        title = page.get_by_label(label("Title"))
        expect(title).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#id_title_error")).to_be_visible()
        expect(page.locator("#id_purpose_error")).to_be_visible()
        expect(title).to_have_attribute("aria-describedby", "id_title_error")
        expect(page.get_by_label(label("Allegation"))).to_have_value("Kept after the error.")
        assert not Case.objects.exists()


@pytest.mark.timeout(300)
def test_layout_at_tablet_width_with_keyboard(journey, live_server, lead):
    page = journey.page
    page.set_viewport_size({"width": 768, "height": 1000})
    with journey.step("768 px: nothing overflows sideways, navigation visible"):
        journey.login("lead")
        assert page.evaluate("document.documentElement.scrollWidth") <= 768
        for label in ("My cases", "New case", "My grants"):
            expect(
                page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True)
            ).to_be_visible()
    with journey.step("the first Tab reaches the skip link, which moves focus to the content"):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
    with journey.step("the current page is marked in the navigation"):
        journey.nav("My cases")
        expect(page.locator('nav[aria-label="Main"] a[aria-current="page"]')).to_have_text("My cases")
