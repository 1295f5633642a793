"""Lists: filters and sorting in the URL (django-filter), counts, headings that fit the reader."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from investigations import actions
from tests.investigations.fixtures import open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


@pytest.fixture
def three_cases(lead, member, reviewer):
    fraud = open_case_for(lead, reviewer, title="Expense fraud", case_type="fraud")
    leak = open_case_for(lead, reviewer, title="Press leak", case_type="leak")
    pending = actions.case_open(
        actor=member, team=[], title="Badge misuse", allegation="a", case_type="misconduct", purpose="p"
    )
    return fraud, leak, pending


def _references(response) -> list[str]:
    return [case.reference for case in response.context["page"].object_list]


def test_case_list_filters_by_status_type_and_lead_in_the_url(three_cases, lead, member, client):
    fraud, leak, _pending = three_cases
    client.force_login(lead)
    url = reverse("investigations:case_list")
    assert _references(client.get(url, {"case_type": "fraud"})) == [fraud.reference]
    assert sorted(_references(client.get(url, {"status": "open"}))) == sorted([fraud.reference, leak.reference])
    # the lead is typed (a username, any case); the form lists no one
    page = client.get(url, {"lead": lead.username.upper()})
    assert sorted(_references(page)) == sorted([fraud.reference, leak.reference])
    assert "2 of 2 cases match" in page.content.decode()
    assert "<select" not in str(page.context["filter"].form["lead"])


def test_case_list_sorts_by_a_column_both_ways(three_cases, lead, client):
    client.force_login(lead)
    url = reverse("investigations:case_list")
    ascending = client.get(url, {"sort": "title"})
    assert [case.title for case in ascending.context["page"].object_list] == ["Expense fraud", "Press leak"]
    descending = client.get(url, {"sort": "-title"})
    assert [case.title for case in descending.context["page"].object_list] == ["Press leak", "Expense fraud"]
    html = ascending.content.decode()
    assert 'aria-sort="ascending"><a href="?sort=-title">Title' in html


def test_filters_never_reach_invisible_cases(three_cases, lead, member, client):
    _, _, pending = three_cases  # led by member, lead is not on its team
    client.force_login(lead)
    response = client.get(reverse("investigations:case_list"), {"q": pending.reference})
    assert _references(response) == []
    # the pending case's lead, typed, finds nothing either, and the form names no one
    by_lead = client.get(reverse("investigations:case_list"), {"lead": member.username})
    assert _references(by_lead) == [] and "0 of 2 cases match" in by_lead.content.decode()
    assert "<option" not in str(by_lead.context["filter"].form["lead"])


def test_bad_filter_values_answer_with_an_empty_list_not_an_error(lead, client):
    client.force_login(lead)
    response = client.get(reverse("investigations:case_list"), {"status": "nonsense", "opened_from": "yesterday"})
    assert response.status_code == 200 and list(response.context["page"].object_list) == []
    assert "Select a valid choice" in response.content.decode()
    summary = re.search(r'<div class="error-summary".*?</div>', response.content.decode(), re.S).group(0)
    assert 'href="#id_status"' in summary and 'href="#id_opened_from"' in summary


def test_reviewers_see_a_heading_that_is_theirs(reviewer, lead, client):
    client.force_login(reviewer)
    assert "<h1>Cases</h1>" in client.get(reverse("investigations:case_list")).content.decode()
    assert "<h1>Grants</h1>" in client.get(reverse("investigations:grant_list")).content.decode()
    client.force_login(lead)
    assert "<h1>My cases</h1>" in client.get(reverse("investigations:case_list")).content.decode()


def test_grant_list_filters_by_status_and_links_the_case(active_grant, lead, client):
    client.force_login(lead)
    url = reverse("investigations:grant_list")
    assert list(client.get(url, {"status": "revoked"}).context["grants"]) == []
    page = client.get(url, {"status": "active", "sort": "-expires"})
    assert list(page.context["grants"]) == [active_grant]
    assert reverse("investigations:case_detail", args=[active_grant.case_id]) in page.content.decode()


def test_grant_list_sorts_both_ways_and_filters_by_case_and_expiry(lead, reviewer, second_reviewer, store, client):
    from datetime import timedelta

    from investigations.models import Grant
    from tests.investigations.fixtures import file_request

    cases = [open_case_for(lead, reviewer, title=title) for title in ("Expense fraud", "Press leak")]
    grants = []
    for case, hours in zip(cases, (48, 24), strict=True):
        data_request = actions.request_submit(actor=lead, request=file_request(case, lead, duration_hours=hours))
        actions.request_decide(actor=second_reviewer, request=data_request, outcome="approve")
        data_request.refresh_from_db()
        grants.append(data_request.grant)
    longer, shorter = grants
    client.force_login(lead)
    url = reverse("investigations:grant_list")

    def listed(**query) -> list[int]:
        return [grant.pk for grant in client.get(url, query).context["grants"]]

    assert listed(sort="expires") == [shorter.pk, longer.pk]
    assert listed(sort="-expires") == [longer.pk, shorter.pk]
    assert listed(sort="case") == [longer.pk, shorter.pk]
    assert listed(sort="-case") == [shorter.pk, longer.pk]
    assert listed(case=cases[1].reference) == [shorter.pk]
    # two days apart, so a date filter between them is clear of any day boundary
    Grant.objects.filter(pk=longer.pk).update(expires_at=shorter.expires_at + timedelta(days=2))
    longer.refresh_from_db()
    assert listed(expires_from=(shorter.expires_at + timedelta(days=1)).date().isoformat()) == [longer.pk]
    assert listed(expires_to=shorter.expires_at.date().isoformat()) == [shorter.pk]
    html = client.get(url, {"sort": "expires"}).content.decode()
    assert 'aria-sort="ascending"><a href="?sort=-expires">' in html


# --- the review queue, decisions, alerts and the audit trail ---------------------------------


@pytest.fixture
def two_in_queue(protected_request, lead, reviewer, store):
    from tests.investigations.fixtures import file_request

    other_case = open_case_for(lead, reviewer, title="Badge misuse", case_type="misconduct")
    plain = actions.request_submit(actor=lead, request=file_request(other_case, lead, subjects=("3",)))
    return protected_request, plain


def _ids(response) -> list[int]:
    return [row.pk for row in response.context["page"].object_list]


def test_review_queue_filters_sorts_and_counts_in_the_url(two_in_queue, second_reviewer, client):
    protected, plain = two_in_queue
    client.force_login(second_reviewer)
    url = reverse("investigations:review_queue")
    assert _ids(client.get(url)) == [protected.pk, plain.pk]  # oldest first by default
    assert _ids(client.get(url, {"sort": "-request"})) == [plain.pk, protected.pk]
    only = client.get(url, {"protected": "yes"})
    assert _ids(only) == [protected.pk]
    assert "1 of 2 requests match" in only.content.decode()
    assert _ids(client.get(url, {"protected": "no", "case_type": "misconduct"})) == [plain.pk]
    assert _ids(client.get(url, {"q": plain.case.reference})) == [plain.pk]
    assert "2 requests wait for you" in client.get(url).content.decode()


def test_review_queue_filters_never_reach_what_the_reviewer_may_not_decide(two_in_queue, second_reviewer, client):
    _protected, plain = two_in_queue
    actions.request_decide(actor=second_reviewer, request=plain, outcome="reject", reason="No basis.")
    client.force_login(second_reviewer)
    response = client.get(reverse("investigations:review_queue"), {"q": plain.case.reference})
    assert _ids(response) == []


def test_decisions_filter_by_outcome_and_sort_by_column(two_in_queue, second_reviewer, client):
    protected, plain = two_in_queue
    actions.request_decide(actor=second_reviewer, request=plain, outcome="reject", reason="No basis.")
    actions.request_decide(actor=second_reviewer, request=protected, outcome="return", reason="Say why.")
    client.force_login(second_reviewer)
    url = reverse("investigations:decision_list")
    rejected = client.get(url, {"outcome": "reject"})
    assert [decision.request_id for decision in rejected.context["page"].object_list] == [plain.pk]
    assert "1 of 2 decisions match" in rejected.content.decode()
    by_request = client.get(url, {"sort": "request"})
    assert [decision.request_id for decision in by_request.context["page"].object_list] == [protected.pk, plain.pk]


def test_alerts_filter_by_severity_and_state_and_sort_by_rank(two_in_queue, second_reviewer, auditor, client):
    from investigations.actions import oversight
    from investigations.models import Alert

    oversight.alerts_scan()
    alerts = list(Alert.objects.all())
    assert alerts, "the protected request raised alerts"
    client.force_login(auditor)
    url = reverse("investigations:alert_list")
    warning = [alert.pk for alert in alerts if alert.severity == "warning"]
    assert sorted(_ids(client.get(url, {"severity": "warning"}))) == sorted(warning)
    assert _ids(client.get(url, {"state": "acknowledged"})) == []
    ranked = client.get(url, {"sort": "severity"}).context["page"].object_list
    order = {"critical": 0, "warning": 1, "info": 2}
    assert [order[alert.severity] for alert in ranked] == sorted(order[alert.severity] for alert in ranked)
    assert f"of {len(alerts)} alert" in client.get(url).content.decode()


def test_audit_trail_sorts_oldest_first_keeps_filters_and_counts(two_in_queue, auditor, client):
    from audit.models import AuditEvent

    client.force_login(auditor)
    url = reverse("audit:event_list")
    oldest = client.get(url, {"sort": "seq", "action": "request.submitted"})
    seqs = [event.seq for event in oldest.context["events"]]
    expected = list(AuditEvent.objects.filter(action="request.submitted").order_by("seq").values_list("seq", flat=True))
    assert seqs == expected and len(seqs) == 2
    html = oldest.content.decode()
    assert "2 events match; oldest first." in html
    assert re.search(r'aria-sort="ascending"><a href="\?[^"]*sort=-seq', html)  # the heading turns the order round
    newest = client.get(url, {"action": "request.submitted"})
    assert [event.seq for event in newest.context["events"]] == expected[::-1]
