"""The case report: produced by one action, as HTML and a PDF rendered from it, recorded in the ledger
with the PDF's SHA-256 and the ledger range it tells; the team's version holds no oracle."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.urls import reverse
from pypdf import PdfReader

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions, timeline
from investigations.models import CaseReport, ReportAudience
from userdata.models import Account

from ..conftest import make_legacy_user
from .fixtures import file_request, narrowed, open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def pdf_text(data: bytes) -> str:
    """The PDF's text, whitespace folded (a line break in the PDF is a space here)."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture
def worked_case(lead, member, reviewer, second_reviewer, store):
    """An open case with a narrowed approval, a query, a task, a note."""
    case = open_case_for(lead, reviewer, team=[member])
    data_request = file_request(case, lead, subjects=("1", "2", "3"))
    actions.request_submit(actor=lead, request=data_request)
    actions.request_decide(
        actor=second_reviewer,
        request=data_request,
        outcome="approve_narrowed",
        reason="Two subjects suffice.",
        scope=narrowed(data_request, subjects=data_request.subjects[:2]),
    )
    data_request.refresh_from_db()
    actions.query_execute_now(actor=lead, grant=data_request.grant, category="ip_logs")
    task = actions.task_create(actor=member, case=case, title="Interview finance", assignee=lead)
    actions.task_set_status(actor=lead, task=task, status="done")
    actions.case_add_note(actor=member, case=case, text="Spoke to **finance** about the Q3 draft.")
    return case


def test_the_report_tells_the_case_and_its_pdf_says_the_same(worked_case, lead):
    report = actions.case_report_produce(actor=lead, case=worked_case)
    text = pdf_text(bytes(report.pdf))
    assert text.lower().startswith("custos · case report · case team version")
    for expected in (
        f"{worked_case.reference} · Leak of the Q3 report",
        "The Q3 report reached a competitor before publication.",  # allegation
        "Establish which internal account shared the report.",  # purpose
        "member Team member",  # the team over time
        "Approve, narrowed",
        "Two subjects suffice.",
        "Subjects 1, 2, 3 1, 2",  # requested against approved
        "Rows read:",  # the grant's scope report
        "Interview finance Done lead",
        "Spoke to finance about the Q3 draft.",
        "member added the task “Interview finance”.",
        f"Ledger events {report.first_seq} to {report.last_seq}",
    ):
        assert expected in text, expected
    assert "<strong>finance</strong>" in report.html  # the note's Markdown, rendered and sanitised


def test_producing_is_recorded_with_the_pdf_hash_and_the_ledger_range(worked_case, lead):
    events = timeline.case_events(worked_case, viewer=lead)
    first, last = events.first().seq, events.last().seq
    report = actions.case_report_produce(actor=lead, case=worked_case)
    assert (report.first_seq, report.last_seq) == (first, last)
    assert report.sha256 == hashlib.sha256(bytes(report.pdf)).hexdigest()
    produced = AuditEvent.objects.get(action=Action.CASE_REPORT_PRODUCED)
    assert produced.case_reference == worked_case.reference and produced.actor == lead
    assert produced.details["sha256"] == report.sha256
    assert (produced.details["first_seq"], produced.details["last_seq"]) == (first, last)
    assert produced.details["events"] == events.count() and produced.seq > last
    assert f"Ledger events {first} to {last}" in pdf_text(bytes(report.pdf))
    # The next report tells one more event? No: producing is not a timeline event, so it tells the same range.
    again = actions.case_report_produce(actor=lead, case=worked_case)
    assert (again.first_seq, again.last_seq) == (first, last)


def test_the_range_counts_only_what_the_team_may_see(worked_case, lead, member):
    """A denial naming the case after the team's last event is outside the range (it would tell the team)."""
    from django.core.exceptions import PermissionDenied

    from investigations.access import get_case_for

    file_request(worked_case, lead, subjects=("4",))  # a lookup, then request.created
    created = AuditEvent.objects.filter(action=Action.REQUEST_CREATED).latest("seq")
    with pytest.raises(PermissionDenied):
        get_case_for(member, worked_case.pk, perm="close_case")
    denied = AuditEvent.objects.filter(action=Action.ACCESS_DENIED, case_reference=worked_case.reference).latest("seq")
    report = actions.case_report_produce(actor=lead, case=worked_case)
    assert report.last_seq == created.seq < denied.seq


def test_a_download_is_the_bytes_whose_hash_the_ledger_holds(client, worked_case, member):
    client.force_login(member)
    response = client.post(reverse("investigations:case_report_produce", args=[worked_case.pk]))
    assert response.status_code == 302 and response["Location"].endswith("#case-reports")
    report = CaseReport.objects.get()
    recorded = AuditEvent.objects.get(action=Action.CASE_REPORT_PRODUCED).details["sha256"]
    download = client.get(reverse("investigations:case_report_pdf", args=[report.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert f'filename="{worked_case.reference}-report-{report.pk}.pdf"' in download["Content-Disposition"]
    assert hashlib.sha256(download.content).hexdigest() == recorded
    page = client.get(reverse("investigations:case_report_html", args=[report.pk]))
    assert page.status_code == 200 and page.content.decode() == report.html
    assert hashlib.sha256(page.content).hexdigest() == report.html_sha256
    case_page = client.get(reverse("investigations:case_detail", args=[worked_case.pk])).content.decode()
    assert recorded in case_page and reverse("investigations:case_report_pdf", args=[report.pk]) in case_page


def test_who_may_produce_and_open_which_version(
    client, worked_case, lead, reviewer, senior_reviewer, other_investigator, auditor, admin_user, superuser
):
    """Whoever sees the case produces it; legal reviewers off the team get the legal version, which
    the team cannot open. Outsiders, auditors, staff and superusers: 404, nothing recorded."""
    legal = actions.case_report_produce(actor=reviewer, case=worked_case)  # reviewer approved the case
    team = actions.case_report_produce(actor=lead, case=worked_case)
    assert (legal.audience, team.audience) == (ReportAudience.LEGAL, ReportAudience.TEAM)
    expected = {lead: {team: 200, legal: 404}, reviewer: {team: 200, legal: 200}}
    for nobody in (senior_reviewer, other_investigator, auditor, admin_user, superuser):
        expected[nobody] = {team: 404, legal: 404}
    for user, answers in expected.items():
        client.force_login(user)
        for report, status in answers.items():
            for route in ("investigations:case_report_pdf", "investigations:case_report_html"):
                assert client.get(reverse(route, args=[report.pk])).status_code == status, (user, report, route)
    for nobody in (senior_reviewer, other_investigator, auditor, admin_user, superuser):
        client.force_login(nobody)
        assert client.post(reverse("investigations:case_report_produce", args=[worked_case.pk])).status_code == 404
    assert CaseReport.objects.count() == 2


def test_an_ex_member_can_no_longer_produce_or_open(client, worked_case, lead, member):
    report = actions.case_report_produce(actor=member, case=worked_case)
    actions.case_remove_member(actor=lead, case=worked_case, user=member)
    client.force_login(member)
    assert client.get(reverse("investigations:case_report_pdf", args=[report.pk])).status_code == 404
    assert client.post(reverse("investigations:case_report_produce", args=[worked_case.pk])).status_code == 404


def test_the_team_keeps_the_report_after_closure(client, worked_case, lead, member):
    closed = actions.case_close(actor=lead, case=worked_case, summary="A finance clerk shared the draft.")
    client.force_login(member)
    assert client.post(reverse("investigations:case_report_produce", args=[closed.pk])).status_code == 302
    text = pdf_text(bytes(CaseReport.objects.get().pdf))
    assert "Closure summary A finance clerk shared the draft." in text and "Status Closed" in text


def test_a_produced_report_never_changes(worked_case, lead):
    report = actions.case_report_produce(actor=lead, case=worked_case)
    report.html = "<p>edited</p>"
    with pytest.raises(ValueError, match="never changes"):
        report.save()


def test_the_renderer_fetches_nothing_from_outside(monkeypatch):
    from investigations import case_report

    fetched = []
    fetcher = case_report._fetcher()
    original = type(fetcher).fetch

    def spy(self, url, headers=None):
        fetched.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(type(fetcher), "fetch", spy)
    monkeypatch.setattr(case_report, "_fetcher", lambda: fetcher)
    html = '<link rel="stylesheet" href="/static/css/report.css"><p>x</p><img src="http://192.0.2.1/a.png">'
    case_report.render_pdf(html)
    assert fetched == [case_report.RENDER_BASE + "static/css/report.css", "http://192.0.2.1/a.png"]
    with pytest.raises(Exception, match="fetches nothing but its stylesheet"):
        original(fetcher, "http://192.0.2.1/a.png")


# --- no oracle before a decision (invariant 10) ---------------------------------------------------


@pytest.fixture
def pending_protected(lead, member, reviewer, admin_user, store, userdata_guard):
    """A request naming account 1 directly and account 7 through its email; account 7 is protected.
    One reviewer approved; the protected policy wants a second (senior) approval: still pending."""
    case = open_case_for(lead, reviewer, team=[member])
    with userdata_guard.allow():  # the test reads the email to type
        email = Account.objects.using("userdata").get(pk=7).email
    actions.protected_subject_add(actor=admin_user, account_id=7, category="journalist")
    data_request = file_request(case, lead, subjects=("1", email), legal_basis="legal_process")
    actions.request_submit(actor=lead, request=data_request)
    return case, data_request


def _subjects_cell(html: str, data_request) -> str:
    article = html.split(f"<h3>Request {data_request.pk} ")[1].split("</article>")[0]
    return re.search(r'<td class="subjects">(.*?)</td>', article).group(1)


def test_the_team_version_holds_no_oracle_before_a_decision(pending_protected, lead, second_reviewer, senior_reviewer):
    case, data_request = pending_protected
    actions.request_decide(actor=second_reviewer, request=data_request, outcome="approve")  # one of two approvals
    data_request.refresh_from_db()
    assert data_request.status == "submitted"
    team = actions.case_report_produce(actor=lead, case=case)
    legal = actions.case_report_produce(actor=senior_reviewer, case=case)
    assert _subjects_cell(team.html, data_request).startswith("1 and the accounts a typed email")
    assert _subjects_cell(legal.html, data_request) == "1, 7"
    team_text, legal_text = pdf_text(bytes(team.pdf)), pdf_text(bytes(legal.pdf))
    badge = f"Request {data_request.pk} · Submitted · protected subject"
    assert badge not in team_text and badge in legal_text
    # The approval that did not end the round: not in the team's decisions, nor in its timeline.
    assert "second_reviewer" not in team_text and "second_reviewer" in legal_text
    assert "1, 7" not in team_text


def test_a_legacy_user_with_two_roles_on_the_team_gets_the_team_version(pending_protected, lead):
    case, data_request = pending_protected
    legacy = make_legacy_user("dual", ["investigator", "legal_reviewer"])
    actions.case_add_member(actor=lead, case=case, user=legacy)
    report = actions.case_report_produce(actor=legacy, case=case)
    assert report.audience == ReportAudience.TEAM
    assert _subjects_cell(report.html, data_request).startswith("1 and the accounts")


def test_the_team_version_is_the_same_whatever_the_email_reaches(
    lead, member, reviewer, admin_user, store, userdata_guard
):
    """Two worlds that differ only in whether the typed email reaches a protected account: same team report."""
    bodies = []
    for account, protect in ((7, False), (8, True)):
        case = open_case_for(lead, reviewer, team=[member], title="Same title")
        if protect:
            actions.protected_subject_add(actor=admin_user, account_id=account, category="journalist")
        with userdata_guard.allow():  # the test reads the email to type
            email = Account.objects.using("userdata").get(pk=account).email
        data_request = file_request(case, lead, subjects=("1", email), legal_basis="legal_process")
        actions.request_submit(actor=lead, request=data_request)
        html = actions.case_report_produce(actor=lead, case=case).html
        bodies.append(_normalised(html, case, data_request))
    assert bodies[0] == bodies[1]


def _normalised(html: str, case, data_request) -> str:
    html = html.replace(case.reference, "REF").replace(f"Request {data_request.pk} ", "Request N ")
    html = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}[^\"<]*)?", "TIME", html)
    html = re.sub(r"#\d+|events \d+ to \d+|request #\d+", "SEQ", html)
    return re.sub(r"grant \d+|report \d+", "ID", html)


def test_the_api_produces_lists_and_serves_the_same_bytes(worked_case, lead, member, other_investigator):
    from tests.api.conftest import token_client

    produced = token_client(member).post(f"/api/v1/cases/{worked_case.pk}/reports/", format="json")
    assert produced.status_code == 201, produced.content
    body = produced.json()
    assert body["audience"] == "team" and body["case_reference"] == worked_case.reference
    event = AuditEvent.objects.get(action=Action.CASE_REPORT_PRODUCED)
    assert body["sha256"] == event.details["sha256"] and body["last_seq"] == event.details["last_seq"]
    listed = token_client(lead).get(f"/api/v1/cases/{worked_case.pk}/reports/").json()
    assert [item["id"] for item in listed] == [body["id"]]
    download = token_client(lead).get(body["pdf"])
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert hashlib.sha256(download.content).hexdigest() == body["sha256"]
    assert "Interview finance" in pdf_text(download.content)
    outsider = token_client(other_investigator)
    assert outsider.get(body["pdf"]).status_code == 404
    assert outsider.get(f"/api/v1/case-reports/{body['id']}/").status_code == 404
    assert outsider.post(f"/api/v1/cases/{worked_case.pk}/reports/", format="json").status_code == 404
    assert CaseReport.objects.count() == 1


def test_the_report_lists_the_evidence_with_its_hashes(worked_case, lead, member, evidence_store):
    from .evidence_helpers import TEXT, upload

    first = actions.evidence_upload(actor=member, case=worked_case, upload=upload(TEXT, "notes.txt", "text/plain"))
    second = actions.evidence_upload(
        actor=lead, case=worked_case, upload=upload(TEXT + b"More.\n", "notes.txt", "text/plain"), supersedes=first
    )
    report = actions.case_report_produce(actor=lead, case=worked_case)
    text = pdf_text(bytes(report.pdf)).replace(" ", "")  # a hash may wrap across lines in the PDF
    assert first.sha256 in text and second.sha256 in text
    assert f"(version2,replaces{first.pk})" in text
    assert TEXT.decode().strip().replace(" ", "") not in text  # records, never the content
