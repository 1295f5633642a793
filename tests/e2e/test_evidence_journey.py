"""Evidence in Chromium: a document uploaded (a disguised file refused with a field error), its
hash shown and the downloaded bytes matching it; a query's result saved as evidence by the
grantee, and read again after the grant expired, when the query's own results are closed.

Each step is named (``journey.step``) and leaves a screenshot under test-output/screenshots/.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from investigations import actions
from investigations.actions import lifecycle
from investigations.models import Evidence, Grant, GrantStatus
from investigations.models.grant import db_now
from tests.investigations.evidence_helpers import EXE, PDF

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "userdata"])]


def _file(tmp_path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.timeout(600)
def test_evidence_uploaded_downloaded_and_a_result_read_after_the_grant_expired(
    journey,
    live_server,
    tmp_path,
    evidence_store,
    open_case,
    wide_grant,
    lead,
    member,
):
    page = journey.page
    case_url = f"/cases/{open_case.pk}/"
    with journey.step("1 a program named as a PDF is refused next to the file field"):
        journey.login("member")
        page.goto(case_url)
        form = page.get_by_role("form", name="Add evidence")
        form.get_by_label("File").set_input_files(_file(tmp_path, "report.pdf", EXE))
        form.get_by_role("button", name="Add evidence").click()
        expect(page.locator("#id_file_error")).to_contain_text("not accepted")
        assert not Evidence.objects.exists()

    with journey.step("2 the member uploads interview notes: Custos shows the hash it computed"):
        form = page.get_by_role("form", name="Add evidence")
        form.get_by_label("File").set_input_files(_file(tmp_path, "interview.pdf", PDF))
        form.get_by_label("Title").fill("Interview with the finance team")
        form.get_by_role("button", name="Add evidence").click()
        digest = hashlib.sha256(PDF).hexdigest()
        expect(page.get_by_role("status")).to_contain_text(digest)
        expect(page.locator('[data-field="sha256"]')).to_have_text(digest)

    with journey.step("3 the download's bytes have the hash shown on the case page"):
        page.goto(case_url)
        row = page.locator("#evidence tr", has_text="Interview with the finance team")
        expect(row.locator('[data-field="sha256"]')).to_have_text(digest)
        with page.expect_download() as download:
            row.get_by_role("link", name="Download").click()
        saved = download.value.path()
        assert hashlib.sha256(Path(saved).read_bytes()).hexdigest() == digest
        assert download.value.suggested_filename == "interview.pdf"
    journey.logout()

    query = actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs")
    with journey.step("4 the grantee saves the query's result as evidence while the grant is active"):
        journey.login("lead")
        page.goto(f"/queries/{query.pk}/")
        page.get_by_role("link", name="Save as evidence").click()
        page.get_by_label("CSV").uncheck()
        page.get_by_role("button", name="Save as evidence").click()
        expect(page.get_by_role("heading", name="Where the rows came from")).to_be_visible()
        expect(page.get_by_text(query.digest)).to_be_visible()

    # The grant runs out: its end passes by the database clock and the minute's expiry task runs.
    Grant.objects.filter(pk=wide_grant.pk).update(expires_at=db_now() - timedelta(seconds=1))
    lifecycle.grants_expire_due()
    wide_grant.refresh_from_db()
    assert wide_grant.status == GrantStatus.EXPIRED

    with journey.step("5 after the grant expired the query's rows are closed"):
        response = page.goto(f"/queries/{query.pk}/results/")
        assert response.status == 403
        expect(page.get_by_text("no longer readable")).to_be_visible()

    with journey.step("6 the saved result is still read by the grantee, its digest intact"):
        page.goto(case_url)
        row = page.locator("#evidence tr", has_text=f"Query #{query.pk}")
        with page.expect_download() as download:
            row.get_by_role("link", name="Download").click()
        document = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert document["result_digest"] == query.digest and document["grant"] == wide_grant.pk
        assert len(document["rows"]) == query.row_count
    journey.logout()

    with journey.step("7 the member, on the team but not a grantee, does not see the saved result"):
        journey.login("member")
        page.goto(case_url)
        expect(page.locator("#evidence")).not_to_contain_text(f"Query #{query.pk}")
        expect(page.locator("#evidence")).to_contain_text("Interview with the finance team")
        item = Evidence.objects.get(query=query)
        assert page.goto(f"/evidence/{item.pk}/").status == 404
