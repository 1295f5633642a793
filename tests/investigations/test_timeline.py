"""The case timeline: sentences from the case's ledger events, filtered, showing only what the team may see."""

from __future__ import annotations

import pytest
from django.urls import reverse

from investigations import actions

from .fixtures import file_request, narrowed, open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _sentences(client, case, **filters) -> list[str]:
    page = client.get(reverse("investigations:case_timeline", args=[case.pk]), filters)
    assert page.status_code == 200
    return [
        line.split("</time> ", 1)[1].split("</li>")[0] for line in page.content.decode().split("<li data-kind=")[1:]
    ]


def test_timeline_tells_the_case_as_sentences(client, lead, member, reviewer, second_reviewer, store):
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
    task = actions.task_create(actor=member, case=case, title="Interview", assignee=lead)
    actions.task_set_status(actor=lead, task=task, status="done")
    actions.case_add_note(actor=member, case=case, text="Spoke to finance.")
    client.force_login(member)
    sentences = _sentences(client, case)
    assert sentences[0] == "lead opened the case."
    assert "reviewer approved the case." in sentences
    assert f"lead submitted request #{data_request.pk} to legal." in sentences
    assert any(
        line.startswith(f"second_reviewer approved request #{data_request.pk}, narrowed to 2 subjects")
        for line in sentences
    )
    assert "member added the task “Interview”." in sentences and "lead finished the task “Interview”." in sentences
    assert _sentences(client, case, kind="tasks") == [
        "member added the task “Interview”.",
        "lead finished the task “Interview”.",
    ]
    assert all(line.startswith("member ") for line in _sentences(client, case, person="member"))


def test_timeline_never_names_subjects_or_protection(client, lead, reviewer, store):
    case = open_case_for(lead, reviewer)
    data_request = file_request(case, lead, subjects=("7",))
    actions.request_submit(actor=lead, request=data_request)
    client.force_login(lead)
    page = client.get(reverse("investigations:case_timeline", args=[case.pk])).content.decode()
    assert "looked up" not in page and "protected" not in page.lower()
    assert "access" not in " ".join(_sentences(client, case)).lower()


def test_timeline_api_matches_the_page(lead, member, reviewer, other_investigator):
    from tests.api.conftest import token_client

    case = open_case_for(lead, reviewer, team=[member])
    actions.case_add_note(actor=member, case=case, text="Noted.")
    body = token_client(member).get(f"/api/v1/cases/{case.pk}/timeline/", {"kind": "notes"}).json()
    assert [item["sentence"] for item in body["results"]] == ["member added a note."]
    assert token_client(member).get(f"/api/v1/cases/{case.pk}/timeline/", {"kind": "x"}).status_code == 400
    assert token_client(other_investigator).get(f"/api/v1/cases/{case.pk}/timeline/").status_code == 404


def test_auditors_get_the_same_timeline_as_a_second_view_and_the_read_is_recorded(
    client, lead, member, reviewer, auditor, other_investigator
):
    from audit.events import Action
    from audit.models import AuditEvent

    case = open_case_for(lead, reviewer, team=[member])
    actions.case_add_note(actor=member, case=case, text="Noted.")
    url = reverse("investigations:audit_case_timeline", args=[case.reference])
    for outsider in (lead, other_investigator):
        client.force_login(outsider)
        assert client.get(url).status_code == 404
    client.force_login(auditor)
    page = client.get(url, {"kind": "notes"}).content.decode()
    assert "member added a note." in page and "lead opened the case." not in page
    assert reverse("audit:case_timeline", args=[case.reference]) in page
    viewed = AuditEvent.objects.filter(action=Action.AUDIT_VIEWED, actor=auditor).latest("seq")
    assert viewed.details["page"] == "case_timeline" and viewed.case_reference == case.reference
    assert client.get(reverse("investigations:audit_case_timeline", args=["INV-1999-0001"])).status_code == 404


def test_an_approval_that_did_not_decide_the_request_is_not_the_teams_to_see(
    client, lead, member, reviewer, second_reviewer, senior_reviewer, auditor, admin_user, store
):
    """No oracle (invariant 10): the first of the two approvals a protected subject needs would tell
    the team the protected policy applies. Page, person filter and API leave it out; legal off the
    team and the auditors' view keep it; once the request is approved the team sees both."""
    from tests.api.conftest import token_client

    case = open_case_for(lead, reviewer, team=[member])
    actions.protected_subject_add(actor=admin_user, account_id=1, category="journalist")
    data_request = actions.request_submit(actor=lead, request=file_request(case, lead, legal_basis="legal_process"))
    actions.request_decide(actor=second_reviewer, request=data_request, outcome="approve")
    approval = f"second_reviewer approved request #{data_request.pk}."
    client.force_login(member)
    page = client.get(reverse("investigations:case_timeline", args=[case.pk])).content.decode()
    assert approval not in page and "second_reviewer" not in page  # nor in the person filter
    body = token_client(member).get(f"/api/v1/cases/{case.pk}/timeline/").json()
    assert approval not in [item["sentence"] for item in body["results"]]
    client.force_login(senior_reviewer)
    assert approval in _sentences(client, case)  # legal off the team sees everything
    client.force_login(auditor)
    audit_page = client.get(reverse("investigations:audit_case_timeline", args=[case.reference])).content.decode()
    assert approval in audit_page
    actions.request_decide(actor=senior_reviewer, request=data_request, outcome="approve")
    client.force_login(member)
    assert approval in _sentences(client, case)
