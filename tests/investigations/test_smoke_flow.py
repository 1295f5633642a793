"""The main path through the actions, end to end, with its ledger entries."""

import pytest
from django.core.exceptions import PermissionDenied

from audit.models import AuditEvent
from investigations import actions
from investigations.models import CaseStatus, GrantStatus, RequestStatus

from .fixtures import file_request

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def test_case_request_grant_path(active_grant, lead, member):
    assert active_grant.status == GrantStatus.ACTIVE
    assert active_grant.request.status == RequestStatus.APPROVED
    assert sorted(active_grant.subjects) == [1, 2]
    assert list(active_grant.grantees.all()) == [lead]
    assert active_grant.is_usable_by(lead)
    assert not active_grant.is_usable_by(member)
    actions_in_ledger = list(AuditEvent.objects.values_list("action", flat=True))
    for expected in [
        "case.opened",
        "case.approved",
        "subject.lookup",
        "request.created",
        "request.submitted",
        "decision.recorded",
        "grant.issued",
    ]:
        assert expected in actions_in_ledger


def test_requester_and_team_cannot_decide(submitted_request, lead, member, reviewer):
    with pytest.raises(PermissionDenied):
        actions.request_decide(actor=lead, request=submitted_request, outcome="approve")
    with pytest.raises(PermissionDenied):
        actions.request_decide(actor=member, request=submitted_request, outcome="approve")
    submitted_request.refresh_from_db()
    assert submitted_request.status == RequestStatus.SUBMITTED


def test_case_reference_format(open_case):
    assert open_case.status == CaseStatus.OPEN
    assert open_case.reference.startswith("INV-") and len(open_case.reference.split("-")[2]) == 4


def test_revoked_grant_is_unusable(active_grant, lead, reviewer):
    actions.grant_revoke(actor=reviewer, grant=active_grant, reason="Scope no longer justified.")
    active_grant.refresh_from_db()
    assert not active_grant.is_usable_by(lead)


def test_unknown_subject_is_a_field_error(open_case, lead, store):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        file_request(open_case, lead, subjects=("1", "no_such_handle"))
    assert "no_such_handle" in str(error.value.message_dict["subjects"])
