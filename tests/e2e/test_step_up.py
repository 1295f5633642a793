"""Step-up before an approval, in Chromium: a reviewer reads the request for longer than the
step-up window, approves with typed reasons, is asked inline for the code (computed here from
the enrolled secret), and the approval completes with the reasons intact."""

from __future__ import annotations

import pytest
from django.test import Client
from playwright.sync_api import expect

from investigations.models import Decision, RequestStatus
from tests.stepup import age_second_factor, check_second_factor_now, enrol, unused_code, wrong_code

from .axe import assert_accessible

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]

REASONS = "Two accounts for thirty days answer the question; nothing wider. Typed before the code."


def signed_in(page, live_server, user) -> Client:
    """The browser holds ``user``'s session, whose second factor was checked just now."""
    enrol(user)
    server_side = Client()
    server_side.force_login(user)
    check_second_factor_now(server_side, user)
    cookie = server_side.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])
    return server_side


@pytest.mark.timeout(300)
def test_a_stale_reviewer_is_asked_inline_and_the_approval_completes(
    journey, live_server, submitted_request, second_reviewer
):
    page = journey.page
    session = signed_in(page, live_server, second_reviewer)
    with journey.step("the decide page, with a recent check: no code asked"):
        page.goto(f"/requests/{submitted_request.pk}/decide/")
        expect(page.get_by_label("Confirm with your authenticator code")).to_have_count(0)
    with journey.step("reading takes longer than the window; approve with reasons"):
        age_second_factor(session)
        page.get_by_label("Approve", exact=True).check()
        page.get_by_label("Reason", exact=True).fill(REASONS)
        page.get_by_role("button", name="Record decision").click()
    with journey.step("asked inline for the code: focused, reasons kept, nothing recorded"):
        code = page.get_by_label("Confirm with your authenticator code")
        expect(code).to_be_focused()
        expect(page.get_by_role("alert")).to_contain_text("Nothing was saved yet")
        expect(page.get_by_label("Reason", exact=True)).to_have_value(REASONS)
        expect(page.get_by_label("Approve", exact=True)).to_be_checked()
        assert not Decision.objects.filter(request=submitted_request).exists()
        assert_accessible(page)
    with journey.step("a wrong code: an error on the field, still nothing recorded"):
        code.fill(wrong_code(second_reviewer))
        page.get_by_role("button", name="Record decision").click()
        expect(page.locator("#id_step_up_code_error")).to_be_visible()
        expect(page.get_by_label("Confirm with your authenticator code")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("Reason", exact=True)).to_have_value(REASONS)
        assert not Decision.objects.filter(request=submitted_request).exists()
    with journey.step("the code from the authenticator: the approval completes"):
        page.get_by_label("Confirm with your authenticator code").fill(unused_code(second_reviewer))
        page.get_by_role("button", name="Record decision").click()
        expect(page.get_by_role("status")).to_contain_text("Decision recorded")
        decision = Decision.objects.get(request=submitted_request)
        assert decision.reason == REASONS and decision.reviewer == second_reviewer
        submitted_request.refresh_from_db()
        assert submitted_request.status == RequestStatus.APPROVED
