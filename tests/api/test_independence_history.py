"""The remove-approve-re-add attack through the pages and the API: refused, nothing offered."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.actions import user_set_roles
from accounts.models import User
from accounts.roles import Role
from investigations import actions
from investigations.models import CaseStatus, Decision, Grant, RequestStatus
from tests.conftest import enrol_totp

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


@pytest.fixture
def insider(open_case, lead, member) -> User:
    """``member``, taken off the team and given the legal reviewer role instead."""
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    user_set_roles(actor=None, user=member, roles=[Role.LEGAL_REVIEWER])
    enrol_totp(member)  # the reviewer role needs a second factor before anything else
    return User.objects.get(pk=member.pk)


@pytest.fixture
def pending_case(lead, member, other_investigator) -> tuple:
    """A case awaiting approval whose former member ``other_investigator`` now reviews."""
    case = actions.case_open(
        actor=lead,
        title="Leak",
        allegation="The report leaked.",
        case_type="misconduct",
        purpose="Find the source.",
        team=[member, other_investigator],
    )
    actions.case_remove_member(actor=lead, case=case, user=other_investigator)
    user_set_roles(actor=None, user=other_investigator, roles=[Role.LEGAL_REVIEWER])
    enrol_totp(other_investigator)
    return case, User.objects.get(pk=other_investigator.pk)


def _undecided(request) -> None:
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    assert not Decision.objects.filter(request=request).exists()
    assert not Grant.objects.filter(request=request).exists()


def test_pages_refuse_the_former_member(client, submitted_request, insider, lead, open_case):
    client.force_login(insider)
    detail = client.get(reverse("investigations:request_detail", args=[submitted_request.pk]))
    assert detail.status_code == 200
    assert reverse("investigations:request_decide", args=[submitted_request.pk]) not in detail.content.decode()
    queue = client.get(reverse("investigations:review_queue"))
    assert reverse("investigations:request_detail", args=[submitted_request.pk]) not in queue.content.decode()
    decided = client.post(
        reverse("investigations:request_decide", args=[submitted_request.pk]), {"outcome": "approve", "reason": ""}
    )
    assert decided.status_code == 403
    _undecided(submitted_request)
    # ... and putting them back on the team afterwards changes nothing either
    user_set_roles(actor=None, user=insider, roles=[Role.INVESTIGATOR])
    actions.case_add_member(actor=lead, case=open_case, user=insider)
    _undecided(submitted_request)


def test_api_refuses_the_former_member(api, submitted_request, insider):
    client = api(insider)
    answer = client.post(f"/api/v1/requests/{submitted_request.pk}/decisions/", {"decision": "approve"}, format="json")
    assert answer.status_code == 403
    queue = client.get("/api/v1/reviews/").json()
    assert submitted_request.pk not in [item["id"] for item in queue]
    _undecided(submitted_request)


def test_case_approval_pages_refuse_the_former_member(client, pending_case):
    case, former = pending_case
    client.force_login(former)
    detail = client.get(reverse("investigations:case_detail", args=[case.pk])).content.decode()
    assert reverse("investigations:case_approve", args=[case.pk]) not in detail
    queue = client.get(reverse("investigations:case_queue")).content.decode()
    assert "another reviewer must decide" in queue
    assert reverse("investigations:case_approve", args=[case.pk]) not in queue
    assert client.post(reverse("investigations:case_approve", args=[case.pk])).status_code == 403
    assert client.post(reverse("investigations:case_reject", args=[case.pk]), {"reason": "No."}).status_code == 403
    case.refresh_from_db()
    assert case.status == CaseStatus.PENDING_APPROVAL


def test_case_approval_api_refuses_the_former_member(api, pending_case):
    case, former = pending_case
    client = api(former)
    assert client.get(f"/api/v1/cases/{case.pk}/").json()["flags"]["can_approve"] is False
    assert client.post(f"/api/v1/cases/{case.pk}/approve/").status_code == 403
    assert client.post(f"/api/v1/cases/{case.pk}/reject/", {"reason": "No."}, format="json").status_code == 403
    case.refresh_from_db()
    assert case.status == CaseStatus.PENDING_APPROVAL
