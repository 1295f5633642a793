"""Two reviewers decide one pending case: the one who loses the race gets 409 saying what
happened (pages and API), not 404, and never who won; nothing changes. Anyone who was never
shown the case in a queue still gets 404."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.models import Case, CaseStatus
from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


@pytest.fixture
def pending(lead, member):
    return actions.case_open(
        actor=lead,
        team=[member],
        title="Leak of the Q3 report",
        allegation="The Q3 report reached a competitor before publication.",
        case_type="misconduct",
        purpose="Establish which internal account shared the report.",
    )


def lost_race(case: Case, outcome: str) -> str:
    """The whole message: what happened and when, and nothing about who."""
    case.refresh_from_db()
    return (
        f"Case {case.reference} was {outcome} by another legal reviewer at {case.decided_at:%Y-%m-%d %H:%M} UTC; "
        "it is no longer awaiting approval."
    )


def decisions(case: Case) -> int:
    return AuditEvent.objects.filter(
        action__in=[Action.CASE_APPROVED, Action.CASE_REJECTED], case_reference=case.reference
    ).count()


@pytest.mark.parametrize("first", ["approve", "reject"])
def test_the_reviewer_who_lost_the_race_gets_409_on_pages(pending, reviewer, second_reviewer, login, first):
    if first == "approve":
        actions.case_approve(actor=reviewer, case=pending)
    else:
        actions.case_reject(actor=reviewer, case=pending, reason="Not an investigation for us.")
    client = login(second_reviewer)
    outcome = "approved" if first == "approve" else "rejected"
    for response in (
        client.post(reverse("investigations:case_approve", args=[pending.pk])),
        client.get(reverse("investigations:case_reject", args=[pending.pk])),
        client.post(reverse("investigations:case_reject", args=[pending.pk]), {"reason": "Too late."}),
    ):
        assert response.status_code == 409
        assert f'<p class="message warning">{lost_race(pending, outcome)}</p>' in response.content.decode()
    assert decisions(pending) == 1


def test_the_reviewer_who_lost_the_race_gets_409_in_the_api(pending, reviewer, second_reviewer):
    actions.case_approve(actor=reviewer, case=pending)
    api = token_client(second_reviewer)
    for path, body in (("approve", {}), ("reject", {"reason": "Too late."})):
        response = api.post(f"/api/v1/cases/{pending.pk}/{path}/", body, format="json")
        assert response.status_code == 409, response.content
        assert response.json() == {"detail": lost_race(pending, "approved"), "code": "invalid_transition"}
    assert decisions(pending) == 1
    pending.refresh_from_db()
    assert pending.status == CaseStatus.OPEN and pending.decided_by == reviewer


@pytest.mark.parametrize("persona", ["other_investigator", "auditor", "outsider", "admin_user", "superuser"])
def test_no_one_else_learns_of_a_decided_case(pending, reviewer, persona, request, login):
    actions.case_approve(actor=reviewer, case=pending)
    user = request.getfixturevalue(persona)
    assert login(user).post(reverse("investigations:case_approve", args=[pending.pk])).status_code in (403, 404)
    response = token_client(user).post(f"/api/v1/cases/{pending.pk}/approve/", {}, format="json")
    assert response.status_code in (403, 404) and "legal reviewer" not in response.content.decode().lower()


def test_a_case_that_does_not_exist_is_still_404(second_reviewer, login):
    assert login(second_reviewer).post(reverse("investigations:case_approve", args=[10**9])).status_code == 404
    assert token_client(second_reviewer).post("/api/v1/cases/999999999/approve/", {}).status_code == 404


@pytest.mark.django_db(transaction=True, databases=["default", "userdata"])
@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="two sessions at once: PostgreSQL")
def test_two_reviewers_approving_at_once_one_wins_the_other_gets_409(
    migrated_rows, lead, member, reviewer, second_reviewer
):
    case = actions.case_open(
        actor=lead,
        team=[member],
        title="Leak of the Q4 report",
        allegation="The Q4 report reached a competitor before publication.",
        case_type="misconduct",
        purpose="Establish which internal account shared the report.",
    )
    answers, start = {}, threading.Barrier(2)

    def approve(user):
        client = Client()
        client.force_login(user)
        start.wait()
        answers[user.username] = client.post(reverse("investigations:case_approve", args=[case.pk])).status_code
        connections.close_all()

    threads = [threading.Thread(target=approve, args=(user,)) for user in (reviewer, second_reviewer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers.values()) == [302, 409], answers
    assert decisions(case) == 1


def test_a_case_decided_more_than_a_day_ago_is_404_again(pending, reviewer, second_reviewer, login):
    from datetime import timedelta

    actions.case_approve(actor=reviewer, case=pending)
    pending.refresh_from_db()
    Case.objects.filter(pk=pending.pk).update(decided_at=pending.decided_at - timedelta(days=1, minutes=1))
    assert login(second_reviewer).post(reverse("investigations:case_approve", args=[pending.pk])).status_code == 404
