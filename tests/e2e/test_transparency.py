"""Journey: an auditor opens the transparency report, sees its charts and downloads the signed JSON."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from audit import checkpoints
from investigations import actions, transparency
from tests.investigations.fixtures import file_request

from .conftest import Journey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "userdata"])]


def test_auditor_reads_the_transparency_report_and_its_charts(page, auditor, open_case, lead, second_reviewer, store):
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead))
    actions.request_decide(actor=second_reviewer, request=request, outcome="approve")
    journey = Journey(page, "transparency")
    with journey.step("auditor opens the report"):
        journey.login(auditor.username)
        journey.nav("Transparency")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Transparency report")
        expect(page.get_by_role("table", name="Grants")).to_be_visible()
    with journey.step("the charts are drawn"):
        charts = page.locator("figure.chart img")
        expect(charts).to_have_count(3)
        for index in range(3):
            chart = charts.nth(index)
            chart.scroll_into_view_if_needed()
            page.wait_for_function("image => image.complete && image.naturalWidth > 0", arg=chart.element_handle())
    with journey.step("a bad range is refused on its field"):
        page.get_by_label("From").fill("2026-05-01")
        page.get_by_label("To (inclusive)").fill("2026-04-01")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_text("The range ends before it starts.")).to_be_visible()
    with journey.step("the signed JSON downloads and checks out"):
        page.get_by_label("From").fill("")
        page.get_by_label("To (inclusive)").fill("")
        page.get_by_role("button", name="Show").click()
        with page.expect_download() as download:
            page.get_by_role("link", name="Download signed JSON").click()
        envelope = json.loads(download.value.path().read_text())
        assert transparency.check(envelope, checkpoints.published_public_key())
        assert envelope["report"]["figures"]["grants"]["issued"] == transparency.SUPPRESSED  # one grant: hidden
