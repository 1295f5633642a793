"""Issue 19's defects in Chromium where a page script or the browser does the work: a scope edit
under a plain "Approve" switches the outcome to "Approve, narrowed" (1); the query form's window is
checked before sending, so a typing slip is not a recorded denial (2); the status poller stops
with a visible "signed out" notice when the session has ended (4); the audit export holds what is
typed, not the last filter (7); the stale "queued" message goes once the query is done (10). And
issue 18's tag boxes: the tags in use are suggested, again after each comma."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from audit.events import Action
from audit.models import AuditEvent
from investigations.actions import query as query_actions
from investigations.models import DataQuery, Grant

from .axe import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "userdata"])]


def _run_query_form(page, category: str = "ip_logs") -> DataQuery:
    page.get_by_label("Data category").select_option(category)
    page.get_by_role("button", name="Run query").click()
    page.wait_for_url("**/queries/*/")
    return DataQuery.objects.order_by("-pk").first()


def test_a_scope_edit_under_a_plain_approval_switches_to_narrowed(
    journey, live_server, submitted_request, second_reviewer
):
    page = journey.page
    with journey.step("the reviewer chooses Approve, then unticks a category"):
        journey.login("second_reviewer")
        page.goto(f"/requests/{submitted_request.pk}/decide/")
        plain, narrowed = page.get_by_label("Approve", exact=True), page.get_by_label("Approve, narrowed")
        plain.check()
        page.locator('input[name="categories"][value="profile"]').uncheck()
        expect(narrowed).to_be_checked()
        expect(plain).not_to_be_checked()
        expect(page.locator("#scope-notice")).to_contain_text("the outcome is now “Approve, narrowed”")
        assert_accessible(page)
    with journey.step("the decision recorded is the narrowed one, the edit kept"):
        page.get_by_label("Reason", exact=True).fill("IP logs answer the question; the profile is not needed.")
        page.get_by_role("button", name="Record decision").click()
        expect(page.get_by_role("status")).to_contain_text("Decision recorded")
        assert Grant.objects.get(request=submitted_request).categories == ["ip_logs"]


def test_a_window_outside_the_grant_is_caught_before_it_is_sent(journey, live_server, active_grant):
    page = journey.page
    start, end = active_grant.window_start, active_grant.window_end
    with journey.step("the date inputs hold the grant's window in ISO, limited to it"):
        journey.login("lead")
        page.goto(f"/grants/{active_grant.pk}/")
        window_from, window_to = page.get_by_label("From"), page.get_by_label("Until (inclusive)")
        expect(window_from).to_have_value(start.isoformat())
        expect(window_to).to_have_value(end.isoformat())
        assert window_from.get_attribute("min") == start.isoformat()
        assert window_to.get_attribute("max") == end.isoformat()
    with journey.step("a start before the grant's window is refused on the page, and nothing is sent"):
        page.get_by_label("Data category").select_option("ip_logs")
        window_from.fill(f"{start.year - 1}-{start:%m-%d}")
        page.get_by_role("button", name="Run query").click()
        expect(page.locator("#id_window_start_client_error")).to_have_text(
            f"The grant's window starts on {start.isoformat()}."
        )
        expect(window_from).to_be_focused()
        assert_accessible(page)
    with journey.step("an end before the start is refused the same way"):
        window_from.fill(end.isoformat())
        window_to.fill(start.isoformat())
        page.get_by_role("button", name="Run query").click()
        expect(page.locator("#id_window_end_client_error")).to_contain_text("Must not be before the start")
        expect(page.locator("#id_window_start_client_error")).to_have_count(0)
    assert page.url.endswith(f"/grants/{active_grant.pk}/")
    assert not DataQuery.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="query.").exists()
    with journey.step("the window corrected, the query is sent"):
        window_from.fill(start.isoformat())
        window_to.fill(end.isoformat())
        query = _run_query_form(page)
        assert query.window_start == start and query.window_end == end


def test_the_queued_message_goes_when_the_query_is_done(journey, live_server, active_grant):
    page = journey.page
    with journey.step("a query sent from the grant page says it is queued"):
        journey.login("lead")
        page.goto(f"/grants/{active_grant.pk}/")
        query = _run_query_form(page)
        queued = page.locator(".message.query-queued")
        expect(queued).to_have_text("The query is queued.")
    with journey.step("the worker runs it: the page follows, the queued message is removed"):
        query_actions.query_run(query_id=query.pk)  # what the worker's task does
        expect(page.locator('#query-status [data-field="status"]')).to_have_text("Succeeded")
        expect(queued).to_have_count(0)
        expect(page.locator('#query-status [data-field="results"]')).to_be_visible()
        assert_accessible(page)


def test_the_poller_stops_with_a_signed_out_notice(journey, live_server, active_grant):
    page = journey.page
    with journey.step("a queued query's page follows its status"):
        journey.login("lead")
        page.goto(f"/grants/{active_grant.pk}/")
        query = _run_query_form(page)
        notice = page.locator("#query-signed-out")
        expect(notice).to_be_hidden()
    with journey.step("the session ends: the page says so and offers to log in again, back to this page"):
        page.context.clear_cookies()
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("You are signed out")
        link = notice.get_by_role("link", name="Log in again")
        assert link.get_attribute("href") == f"/accounts/login/?next=%2Fqueries%2F{query.pk}%2F"
        expect(page.locator('#query-status [data-field="status"]')).not_to_have_text("Succeeded")
        assert AuditEvent.objects.filter(action=Action.QUERY_REQUESTED).count() == 1


def test_tag_suggestions_continue_after_a_comma(journey, live_server, lead, reviewer):
    from investigations import actions
    from tests.investigations.fixtures import open_case_for

    case = open_case_for(lead, reviewer, title="Press leak")
    actions.case_classify(actor=lead, case=case, priority="high", tags=["press-contact", "finance"])
    page = journey.page
    with journey.step("the tags box of a new case suggests the tags in use, and again after a comma"):
        journey.login("lead")
        journey.nav("New case")
        box = page.get_by_label("Tags")
        assert box.get_attribute("list") == "known-tags"
        suggestions = page.locator("#known-tags option")
        expect(suggestions).to_have_count(2)
        box.fill("finance, pr")
        expect(suggestions).to_have_count(1)
        expect(suggestions.first).to_have_attribute("value", "finance, press-contact")
        box.fill("press")
        values = suggestions.evaluate_all("options => options.map(option => option.value)")
        assert sorted(values) == ["finance", "press-contact"], values
        assert_accessible(page)


def test_the_audit_export_sends_what_is_typed_not_the_last_filter(journey, live_server, lead, reviewer, auditor):
    """Defect 7 in the browser: a reference typed into the box and exported without pressing
    Filter is what the export holds; the filter applied before is not."""
    import csv
    import io
    from pathlib import Path

    from tests.investigations.fixtures import open_case_for

    first = open_case_for(lead, reviewer, title="Expense fraud")
    second = open_case_for(lead, reviewer, title="Press leak")
    page = journey.page
    with journey.step("the auditor filters the trail by one case, then types the other and exports"):
        journey.login("auditor")
        journey.nav("Audit trail")
        box = page.get_by_label("Case reference")
        box.fill(first.reference)
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(f"**case_reference={first.reference}**")
        box.fill(second.reference)
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
        assert rows and {row["case_reference"] for row in rows} == {second.reference}
