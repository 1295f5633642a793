"""Invariant 2: independent approval, twice for protected subjects; narrowing never widens."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.actions import user_set_roles
from audit.models import AuditEvent
from investigations import actions
from investigations.access import can_decide, review_queue_for
from investigations.actions.oversight import alerts_scan
from investigations.errors import InvalidTransition
from investigations.models import Alert, CaseMember, Grant, RequestStatus

from ..conftest import make_legacy_user
from .fixtures import file_request, narrowed, open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _assert_unchanged(request):
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    assert not request.decisions.exists()
    assert not Grant.objects.filter(request=request).exists()


@pytest.mark.parametrize(
    "persona, words",
    [
        ("lead", "You filed this request"),
        ("member", "on this case's team"),
        ("other_investigator", "Only legal reviewers"),
        ("auditor", "Only legal reviewers"),
        ("superuser", "Only legal reviewers"),
        ("inactive_user", "Only active legal reviewers"),
    ],
)
def test_who_cannot_decide(submitted_request, request, persona, words):
    user = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied) as error:
        actions.request_decide(actor=user, request=submitted_request, outcome="approve")
    assert words in str(error.value)
    assert not can_decide(user, submitted_request)
    _assert_unchanged(submitted_request)


def test_investigator_reviewer_on_the_team_cannot_decide(lead, reviewer, store):
    dual = make_legacy_user("dual", ["investigator", "legal_reviewer"])
    case = open_case_for(lead, reviewer, team=[dual])
    request = actions.request_submit(actor=lead, request=file_request(case, lead))
    with pytest.raises(PermissionDenied) as error:
        actions.request_decide(actor=dual, request=request, outcome="approve")
    assert "team" in str(error.value)
    assert request not in review_queue_for(dual)
    _assert_unchanged(request)
    user_set_roles(actor=None, user=dual, roles=["legal_reviewer"])  # dropping a role does not help
    dual = type(dual).objects.get(pk=dual.pk)
    with pytest.raises(PermissionDenied):
        actions.request_decide(actor=dual, request=request, outcome="approve")


def test_a_grantee_on_the_case_cannot_decide(active_grant, open_case, lead, member, second_reviewer, reviewer):
    """Someone holding a grant on the case is not independent of it, even if no longer on the team."""
    dual = make_legacy_user("dual", ["investigator", "legal_reviewer"])
    actions.case_add_member(actor=lead, case=open_case, user=dual)
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("3",)))
    actions.request_decide(actor=second_reviewer, request=request, outcome="approve", grantees=[dual])
    CaseMember.objects.filter(case=open_case, user=dual).delete()  # off the team, still a grantee
    later = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("4",)))
    with pytest.raises(PermissionDenied) as error:
        actions.request_decide(actor=dual, request=later, outcome="approve")
    assert "grant on this case" in str(error.value)
    _assert_unchanged(later)


def test_plain_request_one_approval_one_grant(submitted_request, reviewer):
    actions.request_decide(actor=reviewer, request=submitted_request, outcome="approve")
    assert Grant.objects.filter(request=submitted_request).count() == 1


# --- protected subjects ------------------------------------------------------------------------


def test_protected_request_is_flagged_and_oversight_alerted(protected_request):
    assert protected_request.is_protected and protected_request.protected_categories == ["journalist"]
    alerts_scan()
    alert = Alert.objects.get(kind="protected_request_submitted", request=protected_request)
    assert AuditEvent.objects.filter(action="alert.raised", target_id=str(alert.pk)).exists()
    assert AuditEvent.objects.filter(action="protected_subject.added").exists()


def test_protected_one_approval_is_not_enough(protected_request, senior_reviewer):
    actions.request_decide(actor=senior_reviewer, request=protected_request, outcome="approve")
    protected_request.refresh_from_db()
    assert protected_request.status == RequestStatus.SUBMITTED
    assert protected_request.decisions.count() == 1
    assert not Grant.objects.exists()
    assert actions.approvals_still_needed(protected_request) == "one more approval by a different reviewer"


def test_protected_two_approvals_from_senior_and_other_make_one_grant(protected_request, reviewer, senior_reviewer):
    actions.request_decide(actor=reviewer, request=protected_request, outcome="approve")
    assert "senior" in actions.approvals_still_needed(protected_request)
    actions.request_decide(actor=senior_reviewer, request=protected_request, outcome="approve")
    protected_request.refresh_from_db()
    assert protected_request.status == RequestStatus.APPROVED
    assert Grant.objects.filter(request=protected_request).count() == 1


def test_protected_two_non_senior_approvals_are_not_enough(protected_request, reviewer, second_reviewer):
    actions.request_decide(actor=reviewer, request=protected_request, outcome="approve")
    actions.request_decide(actor=second_reviewer, request=protected_request, outcome="approve")
    protected_request.refresh_from_db()
    assert protected_request.status == RequestStatus.SUBMITTED
    assert not Grant.objects.exists()
    assert actions.approvals_still_needed(protected_request) == "one approval by a senior legal reviewer"


def test_the_same_reviewer_counts_once(protected_request, senior_reviewer):
    actions.request_decide(actor=senior_reviewer, request=protected_request, outcome="approve")
    with pytest.raises(InvalidTransition):
        actions.request_decide(actor=senior_reviewer, request=protected_request, outcome="approve")
    protected_request.refresh_from_db()
    assert protected_request.decisions.count() == 1
    assert not Grant.objects.exists()
    assert protected_request not in review_queue_for(senior_reviewer)


def test_protected_two_approvals_intersect(protected_request, reviewer, senior_reviewer):
    actions.request_decide(
        actor=reviewer,
        request=protected_request,
        outcome="approve_narrowed",
        reason="Only the profile.",
        scope=narrowed(protected_request, categories=("profile",)),
    )
    actions.request_decide(
        actor=senior_reviewer,
        request=protected_request,
        outcome="approve_narrowed",
        reason="Only a day.",
        scope=narrowed(protected_request, duration_hours=12),
    )
    grant = Grant.objects.get(request=protected_request)
    assert grant.categories == ["profile"]
    assert grant.expires_at - grant.starts_at == timedelta(hours=12)


def test_registry_entry_added_after_submission_still_needs_two(submitted_request, admin_user, senior_reviewer):
    actions.protected_subject_add(actor=admin_user, account_id=2, category="activist")
    actions.request_decide(actor=senior_reviewer, request=submitted_request, outcome="approve")
    submitted_request.refresh_from_db()
    assert submitted_request.is_protected and submitted_request.status == RequestStatus.SUBMITTED
    assert not Grant.objects.exists()


def test_only_admins_manage_the_registry(reviewer, admin_user):
    with pytest.raises(PermissionDenied):
        actions.protected_subject_add(actor=reviewer, account_id=5, category="journalist")
    entry = actions.protected_subject_add(actor=admin_user, account_id=5, category="journalist")
    with pytest.raises(ValidationError):
        actions.protected_subject_add(actor=admin_user, account_id=5, category="lawyer")
    with pytest.raises(PermissionDenied):  # weakening the registry is for senior legal reviewers
        actions.protected_weakening_propose(actor=admin_user, subject=entry, reason="Added by mistake.")
    assert not AuditEvent.objects.filter(action__startswith="protected_subject.weakening").exists()


# --- narrowing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        ({"subjects": (1, 2, 3)}, "subjects"),
        ({"categories": ("ip_logs", "profile", "location")}, "categories"),
        ({"window_start_days": -1}, "window_start"),
        ({"window_end_days": 1}, "window_end"),
        ({"duration_hours": 25}, "duration_hours"),
    ],
)
def test_narrowing_that_widens_is_refused(submitted_request, reviewer, change, field):
    change = dict(change)
    if "window_start_days" in change:
        change = {"window_start": submitted_request.window_start + timedelta(days=change.pop("window_start_days"))}
    if "window_end_days" in change:
        change = {"window_end": submitted_request.window_end + timedelta(days=change.pop("window_end_days"))}
    with pytest.raises(ValidationError) as error:
        actions.request_decide(
            actor=reviewer,
            request=submitted_request,
            outcome="approve_narrowed",
            reason="Narrowed.",
            scope=narrowed(submitted_request, **change),
        )
    assert field in error.value.message_dict
    _assert_unchanged(submitted_request)


def test_narrowing_is_frozen_into_the_grant(submitted_request, reviewer):
    end = submitted_request.window_end
    actions.request_decide(
        actor=reviewer,
        request=submitted_request,
        outcome="approve_narrowed",
        reason="One subject, one week, four hours.",
        scope=narrowed(submitted_request, subjects=(2,), window_start=end - timedelta(days=6), duration_hours=4),
    )
    grant = Grant.objects.get(request=submitted_request)
    assert grant.subjects == [2]
    assert grant.window_start == end - timedelta(days=6)
    assert grant.expires_at - grant.starts_at == timedelta(hours=4)
    submitted_request.refresh_from_db()
    assert submitted_request.subjects == [1, 2]  # the request keeps what was asked


def test_grantees_must_be_active_team_members(submitted_request, reviewer, member, other_investigator):
    with pytest.raises(ValidationError) as error:
        actions.request_decide(
            actor=reviewer, request=submitted_request, outcome="approve", grantees=[other_investigator]
        )
    assert "grantees" in error.value.message_dict
    _assert_unchanged(submitted_request)
    actions.request_decide(actor=reviewer, request=submitted_request, outcome="approve", grantees=[member])
    grant = Grant.objects.get(request=submitted_request)
    assert set(grant.grantees.values_list("username", flat=True)) == {"lead", "member"}
    assert grant.is_usable_by(member)
