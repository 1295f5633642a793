"""A legal reviewer's decision through the API costs a fixed number of statements, whatever
the reviewer's history, the queue, the number of reviewers and the grantees the approval names.

Counted on real transactions (BEGIN and COMMIT are statements here, as in production) for the
whole request: token, second-factor check, the request, the action, the response. Before,
an approval wrote each grantee's two permissions with guardian's get-or-create (six statements
per grantee and permission) and checked each named grantee's team membership one by one; the
response re-read the request's case and requester and looked the grant up through the UNION
of every grant the reviewer sees (their whole queue and decision history).
"""

from __future__ import annotations

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from investigations import actions
from investigations.models import Grant, GrantUserObjectPermission, RequestStatus
from tests.conftest import make_user
from tests.investigations.fixtures import file_request, open_case_for

from .conftest import token_client

pytestmark = pytest.mark.django_db(databases=["default", "userdata"], transaction=True)

# The whole API call (approval, rejection) as measured on this code; a change that adds a statement
# per call must say why here. Was 57 for an approval naming one grantee, and 12 more per grantee
# (PostgreSQL). SQLite's ledger append takes more statements than PostgreSQL's. An approval's
# grantee permissions are guardian's bulk assignment: two statements per permission (view_grant,
# query_grant), whatever the number of grantees. The requester's e-mail is one INSERT
# (``notify.queue``; a worker sends it), counted since it left the web request.
CEILING = {"postgresql": (35, 22), "sqlite": (41, 25)}


def _submitted(case, lead):
    return actions.request_submit(actor=lead, request=file_request(case, lead))


def _decide(client, data_request, body) -> tuple[int, dict]:
    with CaptureQueriesContext(connections["default"]) as captured:
        response = client.post(f"/api/v1/requests/{data_request.pk}/decisions/", body, format="json")
    assert response.status_code == 201, response.content
    return len(captured.captured_queries), response.json()


def _grow(case, lead, deciding, count: int) -> None:
    """``count`` more requests decided by ``deciding`` (its history), ``count`` more waiting in the
    queue, and ``count`` more legal reviewers."""
    for _ in range(count):
        actions.request_decide(actor=deciding, request=_submitted(case, lead), outcome="reject", reason="Not needed.")
        _submitted(case, lead)
        make_user(f"extra_reviewer_{_grow.calls}", [Role.LEGAL_REVIEWER])
        _grow.calls += 1


_grow.calls = 0


def test_a_decision_costs_the_same_statements_whatever_the_history_and_the_grantees(
    lead, member, other_investigator, reviewer, second_reviewer, store
):
    case = open_case_for(lead, reviewer, team=[member, other_investigator])
    client = token_client(second_reviewer)
    for body in ({"decision": "approve", "grantees": [member.pk]}, {"decision": "reject", "reason": "Warm-up."}):
        _decide(client, _submitted(case, lead), body)  # first-call caches (content types, permissions)

    small_approval, body = _decide(client, _submitted(case, lead), {"decision": "approve", "grantees": [member.pk]})
    grant = Grant.objects.get(pk=body["grant"])
    assert body["request"]["status"] == RequestStatus.APPROVED and set(grant.grantees.all()) == {lead, member}
    small_rejection, _ = _decide(client, _submitted(case, lead), {"decision": "reject", "reason": "Not needed."})

    _grow(case, lead, second_reviewer, 4)
    named = [member.pk, other_investigator.pk]
    large_approval, body = _decide(client, _submitted(case, lead), {"decision": "approve", "grantees": named})
    large_rejection, _ = _decide(client, _submitted(case, lead), {"decision": "reject", "reason": "Not needed."})

    assert (small_approval, small_rejection) == (large_approval, large_rejection)
    approval_ceiling, rejection_ceiling = CEILING[connection.vendor]
    assert small_approval <= approval_ceiling and small_rejection <= rejection_ceiling
    # The approval did everything it did before: the grant, its grantees and their permissions.
    grant = Grant.objects.get(pk=body["grant"])
    assert set(grant.grantees.all()) == {lead, member, other_investigator}
    held = set(
        GrantUserObjectPermission.objects.filter(content_object=grant).values_list(
            "user__username", "permission__codename"
        )
    )
    assert held == {
        (user.username, perm) for user in (lead, member, other_investigator) for perm in ("view_grant", "query_grant")
    }
    for user in (lead, member, other_investigator):
        assert user.has_perm("investigations.query_grant", grant)


def test_a_named_grantee_off_the_team_is_refused_with_the_others_on_it(
    lead, member, outsider, reviewer, second_reviewer, store
):
    """The one membership query still refuses whoever is not on the team (and changes nothing)."""
    case = open_case_for(lead, reviewer, team=[member])
    data_request = _submitted(case, lead)
    response = token_client(second_reviewer).post(
        f"/api/v1/requests/{data_request.pk}/decisions/",
        {"decision": "approve", "grantees": [member.pk, outsider.pk]},
        format="json",
    )
    assert response.status_code == 400 and "grantees" in response.json()
    assert not Grant.objects.filter(request=data_request).exists()
    data_request.refresh_from_db()
    assert data_request.status == RequestStatus.SUBMITTED
