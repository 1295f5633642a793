"""What the decide, grant and query pages' scripts do in Chromium (issue 19, defects 1, 2, 4 and
10): a scope edit under a plain "Approve" switches the outcome to "Approve, narrowed"; the query
form's window is checked before sending, so a typing slip is not a recorded denial; the status
poller removes the stale "queued" message once the query is done, and stops with a visible
"signed out" notice when the session has ended. And issue 18's tag boxes: the tags in use are
suggested, again after each comma."""

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
        values = suggestions.evaluate_all("options => options.map(option => option.value)")
        assert values == ["finance, press-contact"], values
        box.fill("press")
        values = suggestions.evaluate_all("options => options.map(option => option.value)")
        assert sorted(values) == ["finance", "press-contact"], values
        assert_accessible(page)
