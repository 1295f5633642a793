"""The case workspace through the API: priority and tags, tasks and templates, notes with their versions."""

from __future__ import annotations

import pytest

from investigations import actions
from tests.investigations.fixtures import open_case_for

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
    response = client.post(
        f"/api/v1/cases/{case['id']}/classification/", {"priority": "low", "tags": ["x/y"]}, format="json"
    )
    assert response.status_code == 400 and "tags" in response.json()
    response = client.post(
        f"/api/v1/cases/{case['id']}/classification/", {"priority": "low", "tags": []}, format="json"
    )
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


# --- tasks and case templates ------------------------------------------------------------------


def test_tasks_through_the_api(lead, member, reviewer, other_investigator, django_capture_on_commit_callbacks):
    case = open_case_for(lead, reviewer, team=[member])
    client = token_client(member)
    body = {"title": "Interview the finance team", "assignee": lead.pk, "due_date": "2020-01-01"}
    response = client.post(f"/api/v1/cases/{case.pk}/tasks/", body, format="json")
    assert response.status_code == 201, response.content
    task = response.json()
    assert task["assignee"]["username"] == lead.username and task["overdue"] is True
    bad = client.post(
        f"/api/v1/cases/{case.pk}/tasks/", {"title": "x", "assignee": other_investigator.pk}, format="json"
    )
    assert bad.status_code == 400 and "assignee" in bad.json()
    unknown = client.post(f"/api/v1/cases/{case.pk}/tasks/", {"title": "x", "status": "done"}, format="json")
    assert unknown.status_code == 400 and "status" in unknown.json()
    response = client.patch(f"/api/v1/tasks/{task['id']}/", {"due_date": None}, format="json")
    assert response.status_code == 200 and response.json()["due_date"] is None
    assert response.json()["title"] == "Interview the finance team", "a PATCH keeps what it does not name"
    assert token_client(lead).get("/api/v1/tasks/").json()["count"] == 1
    response = client.post(f"/api/v1/tasks/{task['id']}/status/", {"status": "done"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "done"
    assert token_client(lead).get("/api/v1/tasks/").json()["count"] == 0
    assert [item["id"] for item in client.get(f"/api/v1/cases/{case.pk}/tasks/").json()] == [task["id"]]
    outsider = token_client(other_investigator)
    assert outsider.get(f"/api/v1/tasks/{task['id']}/").status_code == 404
    assert outsider.get(f"/api/v1/cases/{case.pk}/tasks/").status_code == 404
    assert outsider.post(f"/api/v1/tasks/{task['id']}/status/", {"status": "open"}, format="json").status_code == 404


def test_closed_case_tasks_are_frozen_and_close_needs_the_override(lead, reviewer):
    case = open_case_for(lead, reviewer)
    client = token_client(lead)
    task = client.post(f"/api/v1/cases/{case.pk}/tasks/", {"title": "Interview"}, format="json").json()
    response = client.post(f"/api/v1/cases/{case.pk}/close/", {"summary": "Over."}, format="json")
    assert response.status_code == 400 and "override_reason" in response.json()
    body = {"summary": "Over.", "override_reason": "The witness left the company."}
    assert client.post(f"/api/v1/cases/{case.pk}/close/", body, format="json").status_code == 200
    response = client.post(f"/api/v1/tasks/{task['id']}/status/", {"status": "done"}, format="json")
    assert response.status_code == 403


def test_case_templates_are_staff_only(admin_user, lead, auditor):
    assert token_client(lead).get("/api/v1/case-templates/").status_code == 404
    assert token_client(auditor).put("/api/v1/case-templates/leak/", {"tasks": ["x"]}, format="json").status_code == 404
    client = token_client(admin_user)
    response = client.put("/api/v1/case-templates/leak/", {"tasks": ["Confirm the leak", "Report"]}, format="json")
    assert response.status_code == 200 and response.json() == {
        "case_type": "leak",
        "tasks": ["Confirm the leak", "Report"],
    }
    assert client.put("/api/v1/case-templates/nope/", {"tasks": []}, format="json").status_code == 404
    assert client.put("/api/v1/case-templates/leak/", {"tasks": ["x" * 201]}, format="json").status_code == 400
    listed = {item["case_type"]: item["tasks"] for item in client.get("/api/v1/case-templates/").json()}
    assert listed["leak"] == ["Confirm the leak", "Report"] and listed["fraud"] == []


# --- notes with their versions ------------------------------------------------------------------


def test_notes_through_the_api_keep_every_version(lead, member, reviewer, other_investigator):
    from audit.events import Action
    from tests.investigations.matrix import events_since, ledger_mark

    case = open_case_for(lead, reviewer, team=[member])
    client = token_client(member)
    response = client.post(f"/api/v1/cases/{case.pk}/notes/", {"text": "Spoke to **finance**."}, format="json")
    assert response.status_code == 201, response.content
    note = response.json()
    assert note["version"] == 1 and "<strong>finance</strong>" in note["html"] and note["edited_at"] is None

    mark = ledger_mark()
    response = client.patch(f"/api/v1/notes/{note['id']}/", {"text": "Spoke to finance and HR."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2 and response.json()["edited_at"] is not None
    assert events_since(mark) == [Action.CASE_NOTE_EDITED]
    versions = client.get(f"/api/v1/notes/{note['id']}/versions/").json()
    assert [(item["number"], item["text"]) for item in versions] == [
        (1, "Spoke to **finance**."),
        (2, "Spoke to finance and HR."),
    ]
    assert client.get(f"/api/v1/notes/{note['id']}/").json()["text"] == "Spoke to finance and HR."

    assert client.patch(f"/api/v1/notes/{note['id']}/", {"text": "  "}, format="json").status_code == 400
    lead_client = token_client(lead)
    mark = ledger_mark()
    assert lead_client.patch(f"/api/v1/notes/{note['id']}/", {"text": "Mine now."}, format="json").status_code == 403
    assert events_since(mark) == [Action.ACCESS_DENIED]  # only the author edits; the refusal is recorded
    assert lead_client.get(f"/api/v1/notes/{note['id']}/versions/").status_code == 200  # the team reads them
    assert token_client(other_investigator).get(f"/api/v1/notes/{note['id']}/versions/").status_code == 404
    assert len(client.get(f"/api/v1/notes/{note['id']}/versions/").json()) == 2
