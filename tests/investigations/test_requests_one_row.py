"""``get_request_for`` fetches one request with its case tested row by row
(``requests_visible_to(user, one_row=True)``, ``access.case_seen_by``): it must select exactly the
requests the UNION of ``cases_visible_to`` does, for every persona, in every state a request
and its case can be in, including a reviewer's history (what they decided), the queue
(submitted requests on cases they never touched), group permissions and drafts seen only by
the team. Before, fetching one request read the whole UNION first, for a reviewer their whole
queue and decision history."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.http import Http404

from investigations import access, actions
from investigations.models import CaseGroupObjectPermission

from .fixtures import file_request, open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def test_one_request_is_seen_exactly_when_the_union_sees_it(
    lead, member, other_investigator, reviewer, second_reviewer, senior_reviewer, auditor, outsider, superuser, store
):
    watched = open_case_for(lead, reviewer, team=[member])
    elsewhere = open_case_for(other_investigator, senior_reviewer)
    draft = file_request(watched, lead)
    submitted = actions.request_submit(actor=lead, request=file_request(watched, lead))
    decided = actions.request_submit(actor=lead, request=file_request(watched, lead))
    actions.request_decide(actor=second_reviewer, request=decided, outcome="reject", reason="Not needed.")
    # A case whose only request second_reviewer decided: they see it through their history alone.
    history = actions.request_submit(actor=other_investigator, request=file_request(elsewhere, other_investigator))
    actions.request_decide(actor=second_reviewer, request=history, outcome="reject", reason="Not needed.")
    other_draft = file_request(elsewhere, other_investigator)
    # An outsider who sees the watched case through a group's permission.
    team = Group.objects.create(name="press-office-readers")
    view_case = Permission.objects.get(codename="view_case", content_type__app_label="investigations")
    CaseGroupObjectPermission.objects.create(group=team, permission=view_case, content_object=watched)
    outsider.groups.add(team)

    requests = [draft, submitted, decided, history, other_draft]
    people = [
        lead,
        member,
        other_investigator,
        reviewer,
        second_reviewer,
        senior_reviewer,
        auditor,
        outsider,
        superuser,
    ]
    seen_by_someone = set()
    for user in people:
        union = set(access.requests_visible_to(user).values_list("pk", flat=True))
        one_row = set(access.requests_visible_to(user, one_row=True).values_list("pk", flat=True))
        assert one_row == union, user.username
        seen_by_someone |= union
        for data_request in requests:
            try:
                access.get_request_for(user, data_request.pk)
            except Http404:
                assert data_request.pk not in union, (user.username, data_request.pk)
            else:
                assert data_request.pk in union, (user.username, data_request.pk)
    # The matrix means something: each way of seeing a request was taken by someone, and hidden from someone.
    assert history.pk in set(access.requests_visible_to(second_reviewer).values_list("pk", flat=True))
    assert draft.pk in set(access.requests_visible_to(member).values_list("pk", flat=True))
    assert draft.pk not in set(access.requests_visible_to(second_reviewer).values_list("pk", flat=True))
    assert submitted.pk in set(access.requests_visible_to(outsider).values_list("pk", flat=True))
    assert not access.requests_visible_to(auditor).exists()
    assert seen_by_someone >= {draft.pk, submitted.pk, decided.pk, history.pk, other_draft.pk}
