"""The case report and protection detail follow involvement history, and reading a report is recorded.

Involvement is historical (``access.involvement_in``): an ex-member later made a legal reviewer,
or a legacy user holding both roles, is still the case team for what they may see before a
decision (invariant 10). Reading a stored report is an event (invariant 7)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.actions import user_set_roles
from audit.models import AuditEvent
from investigations import actions
from investigations.models import ReportAudience
from tests.conftest import make_legacy_user, make_user
from userdata.models import Account

from .fixtures import file_request, open_case_for
from .test_case_report import _subjects_cell

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


@pytest.fixture
def pending_protected(lead, member, reviewer, admin_user, store, userdata_guard):
    case = open_case_for(lead, reviewer, team=[member])
    with userdata_guard.allow():
        email = Account.objects.using("userdata").get(pk=7).email
    actions.protected_subject_add(actor=admin_user, account_id=7, category="journalist")
    data_request = file_request(case, lead, subjects=("1", email), legal_basis="legal_process")
    actions.request_submit(actor=lead, request=data_request)
    return case, data_request


def test_an_ex_member_made_reviewer_does_not_get_the_legal_version(pending_protected, lead):
    """An investigator on the team, removed, then given the legal reviewer role, is not independent
    of the case: the report they produce is the team's version, without what the typed e-mail
    reaches (7) or the protected badge."""
    case, data_request = pending_protected
    insider = make_user("insider", ["investigator"])
    actions.case_add_member(actor=lead, case=case, user=insider)
    actions.case_remove_member(actor=lead, case=case, user=insider)
    user_set_roles(actor=None, user=insider, roles=["legal_reviewer"])
    insider.refresh_from_db()
    insider.__dict__.pop("role_names", None)
    report = actions.case_report_produce(actor=insider, case=case)
    assert report.audience == ReportAudience.TEAM
    assert "7" not in _subjects_cell(report.html, data_request)


def test_a_legacy_ex_member_does_not_get_the_legal_version(pending_protected, lead):
    case, _pull = pending_protected
    legacy = make_legacy_user("dual", ["investigator", "legal_reviewer"])
    actions.case_add_member(actor=lead, case=case, user=legacy)
    actions.case_remove_member(actor=lead, case=case, user=legacy)
    report = actions.case_report_produce(actor=legacy, case=case)
    assert report.audience == ReportAudience.TEAM


def test_reading_a_stored_report_is_recorded(pending_protected, lead, member, client):
    """The report holds subjects, grants and what was queried: each read (page, PDF, API PDF) is a
    ``case_report.read`` event naming the reader and how."""
    case, _ = pending_protected
    report = actions.case_report_produce(actor=lead, case=case)
    client.force_login(member)
    assert client.get(reverse("investigations:case_report_html", args=[report.pk])).status_code == 200
    assert client.get(reverse("investigations:case_report_pdf", args=[report.pk])).status_code == 200
    reads = AuditEvent.objects.filter(action="case_report.read", target_id=str(report.pk), actor=member)
    assert sorted(event.details["via"] for event in reads) == ["html", "pdf"]
    assert all(event.details["sha256"] == report.sha256 for event in reads)


def test_an_ex_member_made_reviewer_sees_no_protection_detail_on_the_request(pending_protected, lead):
    """On the request pages too: an ex-member made a reviewer may not decide the case, and sees
    only that the protected policy applies, not which account or link."""
    from investigations import access

    case, data_request = pending_protected
    insider = make_user("insider", ["investigator"])
    actions.case_add_member(actor=lead, case=case, user=insider)
    actions.case_remove_member(actor=lead, case=case, user=insider)
    user_set_roles(actor=None, user=insider, roles=["legal_reviewer"])
    insider.refresh_from_db()
    insider.__dict__.pop("role_names", None)
    assert not access.can_review_case(insider, case)
    assert not access.sees_protection_detail(insider, data_request)
