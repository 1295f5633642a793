"""Lists: filters and sorting in the URL (django-filter), counts, headings that fit the reader."""

from __future__ import annotations

import pytest
from django.urls import reverse

from investigations import actions
from tests.investigations.conftest import open_case_for

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
    # the lead's choices are the leads of cases the user can see
    page = client.get(url, {"lead": lead.pk})
    assert sorted(_references(page)) == sorted([fraud.reference, leak.reference])
    assert "2 of 2 cases match" in page.content.decode()


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
    assert member.display_name not in str(response.context["filter"].form["lead"])


def test_bad_filter_values_answer_with_an_empty_list_not_an_error(lead, client):
    client.force_login(lead)
    response = client.get(reverse("investigations:case_list"), {"status": "nonsense", "opened_from": "yesterday"})
    assert response.status_code == 200 and list(response.context["page"].object_list) == []
    assert "Select a valid choice" in response.content.decode()


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
