"""The case report in Chromium: produced from the case page, read as a printable page, the PDF
downloaded and opened (its text read back), its hash the one the page and the ledger show."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.models import CaseReport

from .axe import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.timeout(600)
def test_the_report_is_produced_read_downloaded_and_opened(journey, live_server, lead, member, reviewer):
    page = journey.page
    case = actions.case_open(
        actor=lead,
        team=[member],
        title="Leak of the board minutes",
        allegation="The March board minutes reached a newspaper.",
        case_type="leak",
        purpose="Find which internal account forwarded the minutes.",
    )
    actions.case_approve(actor=reviewer, case=case)
    task = actions.task_create(actor=member, case=case, title="Interview the press office", assignee=member)
    actions.task_set_status(actor=member, task=task, status="done")
    actions.case_add_note(actor=member, case=case, text="The **press office** confirmed the date.")

    with journey.step("1 the lead produces the case report from the case page"):
        journey.login("lead")
        page.goto(f"/cases/{case.pk}/")
        page.get_by_role("button", name="Case report").click()
        expect(page.get_by_role("status")).to_contain_text("Case report")
        report = CaseReport.objects.get()
        row = page.locator("#case-reports tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(report.sha256)
        expect(row).to_contain_text(f"{report.first_seq} to {report.last_seq}")

    with journey.step("2 the printable page: the case, the ledger range, its print stylesheet"):
        page.get_by_role("link", name="Printable page").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"{case.reference} · Leak of the board minutes")
        expect(page.locator("#ledger-range")).to_contain_text(f"Ledger events {report.first_seq} to {report.last_seq}")
        expect(page.locator("#notes strong")).to_have_text("press office")
        border = page.locator("#team table td").first.evaluate("cell => getComputedStyle(cell).borderTopStyle")
        assert border == "solid"  # report.css applied under the content security policy
        assert_accessible(page)
        page.go_back()

    with journey.step("3 the PDF is downloaded and opened: its text is the case's, its hash the ledger's"):
        with page.expect_download() as download_info:
            page.locator("#case-reports").get_by_role("link", name="PDF").click()
        download = download_info.value
        assert download.suggested_filename == f"{case.reference}-report-{report.pk}.pdf"
        data = Path(download.path()).read_bytes()
        assert data.startswith(b"%PDF-")
        recorded = AuditEvent.objects.get(action=Action.CASE_REPORT_PRODUCED).details["sha256"]
        assert hashlib.sha256(data).hexdigest() == recorded == report.sha256
        reader = PdfReader(io.BytesIO(data))
        text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
        assert f"{case.reference} · Leak of the board minutes" in text
        assert "Interview the press office Done member" in text
        assert "The press office confirmed the date." in text
        assert f"Ledger events {report.first_seq} to {report.last_seq}" in text
        assert reader.metadata.title == f"Case report {case.reference}"
