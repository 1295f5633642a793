"""Every form on a page: invalid input shows the error next to its field, keeps the other values,
and changes nothing (no row, no ledger entry)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from investigations.models import Case, CaseMember, CaseNote, DataPullRequest, DataQuery, Decision, Grant

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

KEPT = "Words that must survive the error"
MODELS = (Case, CaseMember, CaseNote, DataPullRequest, Decision, Grant, DataQuery)


def snapshot() -> dict:
    state = {model.__name__: sorted(model.objects.values_list("pk", flat=True)) for model in MODELS}
    state["Case.status"] = sorted(Case.objects.values_list("pk", "status"))
    state["DataPullRequest.status"] = sorted(DataPullRequest.objects.values_list("pk", "status"))
    state["Grant.status"] = sorted(Grant.objects.values_list("pk", "status"))
    # Reading and refusing are recorded by design; a change would be any other entry.
    state["ledger"] = list(
        AuditEvent.objects.exclude(action__in=["subject.lookup", "access.denied"]).values_list("seq", flat=True)
    )
    return state


def long_text(size: int = 10_001) -> str:
    return "x" * size


# name: (persona, fixture the url needs, url name, data, field that must show the error)
CASES = {
    "case_create": ("lead", None, "investigations:case_create",
                    {"title": "", "allegation": KEPT, "case_type": "fraud", "purpose": "P."}, "title"),
    "case_create_type": ("lead", None, "investigations:case_create",
                         {"title": KEPT, "allegation": "A.", "case_type": "gossip", "purpose": "P."}, "case_type"),
    "case_edit": ("lead", "pending_case", "investigations:case_edit",
                  {"title": KEPT, "allegation": "A.", "case_type": "fraud", "purpose": ""}, "purpose"),
    "case_note": ("member", "open_case", "investigations:case_note_add", {"text": "   "}, "text"),
    "case_note_long": ("member", "open_case", "investigations:case_note_add", {"text": long_text()}, "text"),
    "case_member_add": ("lead", "open_case", "investigations:case_members", {"username": "nobody-" + "y" * 8},
                        "username"),
    "case_reject": ("reviewer", "pending_case", "investigations:case_reject", {"reason": ""}, "reason"),
    "case_close": ("lead", "open_case", "investigations:case_close", {"summary": KEPT}, "confirm"),
    "request_create": ("lead", "open_case", "investigations:request_create",
                       {"subjects": "1", "categories": ["ip_logs", "no_such_category"], "window_start": "2020-01-01",
                        "window_end": "2020-01-02", "justification": KEPT, "legal_basis": "internal_policy",
                        "duration_hours": "24"}, "categories"),
    "request_edit": ("lead", "draft_request", "investigations:request_edit",
                     {"subjects": "1", "categories": ["ip_logs"], "window_start": "not a date",
                      "window_end": "2020-01-02", "justification": KEPT, "legal_basis": "internal_policy",
                      "duration_hours": "24"}, "window_start"),
    "request_withdraw": ("lead", "draft_request", "investigations:request_withdraw", {"reason": long_text()},
                         "reason"),
    "decide_reason": ("reviewer", "submitted_request", "investigations:request_decide",
                      {"outcome": "reject", "reason": "", "grantees": []}, "reason"),
    "decide_outcome": ("reviewer", "submitted_request", "investigations:request_decide",
                       {"outcome": "approve_everything", "reason": KEPT}, "outcome"),
    "grant_revoke": ("lead", "active_grant", "investigations:grant_revoke", {"reason": ""}, "reason"),
    "query_create": ("lead", "active_grant", "investigations:query_create",
                     {"category": "ip_logs", "page_size": "0", "window_start": "2020-13-45"}, "page_size"),
}


@pytest.fixture
def pending_case(lead, member):
    from investigations import actions

    return actions.case_open(actor=lead, team=[member], title="Pending", allegation="A.", case_type="fraud",
                             purpose="P.")


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_input_shows_field_error_keeps_values_and_changes_nothing(name, request, client):
    persona, target, url_name, data, field = CASES[name]
    client.force_login(request.getfixturevalue(persona))
    args = [request.getfixturevalue(target).pk] if target else []
    before = snapshot()
    response = client.post(reverse(url_name, args=args), data)
    page = response.content.decode()
    assert response.status_code == 200, f"{name}: answered {response.status_code}"
    assert f'id="id_{field}_error"' in page, f"{name}: no error next to {field}"
    error_at = page.index(f'id="id_{field}_error"')
    input_at = page.index(f'id="id_{field}')
    assert input_at < error_at, f"{name}: the error is not right after its field"
    # The error summary, at the top of the form, links to the field (its first choice for a group).
    summary = re.search(r'<div class="error-summary" tabindex="-1" data-error-summary.*?</div>', page, re.S)
    assert summary, f"{name}: no error summary"
    assert re.search(rf'href="#id_{field}(_0)?"', summary.group(0)), f"{name}: the summary has no link to {field}"
    assert summary.start() < input_at, f"{name}: the summary is not above the field"
    if KEPT in str(data):
        assert KEPT in page, f"{name}: the other values were not kept"
    assert snapshot() == before, f"{name}: invalid input changed something"


def test_member_remove_of_a_non_member_changes_nothing(open_case, lead, other_investigator, client):
    client.force_login(lead)
    before = snapshot()
    url = reverse("investigations:case_member_remove", args=[open_case.pk])
    response = client.post(url, {"user": other_investigator.pk}, follow=True)
    assert "Choose a member of the team." in response.content.decode()
    assert snapshot() == before


def test_audit_filter_shows_the_error_next_to_the_field(auditor, client):
    client.force_login(auditor)
    today = timezone.now().date()
    yesterday = today - timedelta(days=1)
    filters = {"date_from": today.isoformat(), "date_to": yesterday.isoformat()}
    response = client.get(reverse("audit:event_list"), filters)
    page = response.content.decode()
    assert 'id="id_date_to_error"' in page and "before the start date" in page


def test_login_error_is_shown_and_the_username_kept(lead, client):
    response = client.post(reverse("account_login"), {"login": "lead", "password": "wrong"})
    page = response.content.decode()
    assert response.status_code == 200 and 'role="alert"' in page and 'value="lead"' in page
