"""The case workspace through the API: priority and tags."""

from __future__ import annotations

import pytest

from investigations import actions
from tests.investigations.conftest import open_case_for

from .conftest import token_client

pytestmark = pytest.mark.django_db


def test_open_with_priority_and_tags_then_classify_and_filter(lead, reviewer):
    client = token_client(lead)
    body = {
        "title": "Badge misuse",
        "allegation": "A badge was lent out.",
        "case_type": "misconduct",
        "purpose": "Find out who used it.",
        "priority": "high",
        "tags": ["Badges", "site-b"],
    }
    response = client.post("/api/v1/cases/", body, format="json")
    assert response.status_code == 201, response.content
    case = response.json()
    assert case["priority"] == "high" and case["tags"] == ["badges", "site-b"]
    response = client.put(
        f"/api/v1/cases/{case['id']}/classification/", {"priority": "low", "tags": ["x/y"]}, format="json"
    )
    assert response.status_code == 400 and "tags" in response.json()
    response = client.put(f"/api/v1/cases/{case['id']}/classification/", {"priority": "low", "tags": []}, format="json")
    assert response.status_code == 200 and response.json()["tags"] == [] and response.json()["flags"]["can_classify"]
    other = client.post("/api/v1/cases/", body | {"title": "Second"}, format="json").json()
    listed = client.get("/api/v1/cases/", {"tag": "badges"}).json()["results"]
    assert [item["id"] for item in listed] == [other["id"]]
    listed = client.get("/api/v1/cases/", {"sort": "priority"}).json()["results"]
    assert [item["id"] for item in listed] == [other["id"], case["id"]]
    assert client.get("/api/v1/cases/", {"priority": "urgent"}).status_code == 400


def test_tag_list_shows_only_tags_on_visible_cases(lead, reviewer, other_investigator):
    case = open_case_for(lead, reviewer)
    actions.case_classify(actor=lead, case=case, priority="high", tags=["press-contact", "finance"])
    assert token_client(lead).get("/api/v1/tags/", {"q": "Pr"}).json() == {"tags": ["press-contact"]}
    assert token_client(other_investigator).get("/api/v1/tags/").json() == {"tags": []}
