"""Invariant 2, historical: whoever is or ever was on a case's team, filed a request on it or held
a grant on it never decides the case or its requests; team changes while a decision is pending
alert oversight."""

from __future__ import annotations

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import PermissionDenied

from accounts.actions import user_set_roles
from accounts.models import User
from accounts.roles import Role
from audit.models import AuditEvent
from investigations import actions
from investigations.access import (
    can_decide,
    can_review_case,
    case_flags,
    cases_awaiting_approval_for,
    independence_problem,
    review_queue_for,
)
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind, CaseMembership, CaseStatus, Grant, Involvement, RequestStatus

from ..conftest import make_user
from .fixtures import file_request, open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

TEAM_ALERT = AlertKind.TEAM_CHANGED_PENDING_DECISION


def turned_reviewer(user: User) -> User:
    """The insider off the team takes the legal reviewer hat (roles swapped, not added: a second
    person's roles, as role separation requires)."""
    user_set_roles(actor=None, user=user, roles=[Role.LEGAL_REVIEWER])
    return User.objects.get(pk=user.pk)


def refused(user: User, request) -> str:
    with pytest.raises(PermissionDenied) as error:
        actions.request_decide(actor=user, request=request, outcome="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    assert not request.decisions.exists() and not Grant.objects.filter(request=request).exists()
    assert not can_decide(user, request)
    assert request not in review_queue_for(user)
    return str(error.value)


# --- the remove, approve, re-add attack --------------------------------------------------------


def test_a_removed_member_cannot_decide_the_cases_requests(submitted_request, open_case, lead, member):
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    insider = turned_reviewer(member)
    assert "were on this case's team" in refused(insider, submitted_request)


def test_a_removed_member_cannot_approve_or_reject_the_case(lead, member):
    case = actions.case_open(
        actor=lead,
        title="Leak",
        allegation="The report leaked.",
        case_type="misconduct",
        purpose="Find the source.",
        team=[member],
    )
    actions.case_remove_member(actor=lead, case=case, user=member)
    insider = turned_reviewer(member)
    assert not can_review_case(insider, case)
    assert not case_flags(insider, case)["can_approve"]
    assert cases_awaiting_approval_for(insider).get(pk=case.pk).reviewer_on_team
    with pytest.raises(PermissionDenied):
        actions.case_approve(actor=insider, case=case)
    with pytest.raises(PermissionDenied):
        actions.case_reject(actor=insider, case=case, reason="Not needed.")
    case.refresh_from_db()
    assert case.status == CaseStatus.PENDING_APPROVAL and case.decided_by is None


def test_re_added_and_removed_again_still_cannot_decide(submitted_request, open_case, lead, member, reviewer):
    """Two team periods, both closed: the history keeps both."""
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    actions.case_add_member(actor=lead, case=open_case, user=member)
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    periods = CaseMembership.objects.filter(case=open_case, user=member, involvement=Involvement.TEAM)
    assert periods.count() == 2 and not periods.filter(left_at__isnull=True).exists()
    assert "were on this case's team" in refused(turned_reviewer(member), submitted_request)
    assert can_decide(reviewer, submitted_request)  # an independent reviewer still may


# --- ex-grantee, ex-filer ------------------------------------------------------------------------


def test_an_ex_grantee_cannot_decide(open_case, lead, member, second_reviewer, store):
    first = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("3",)))
    actions.request_decide(actor=second_reviewer, request=first, outcome="approve", grantees=[member])
    actions.case_remove_member(actor=lead, case=open_case, user=member)  # leaves the grant too
    assert not Grant.objects.filter(case=open_case, grantees=member).exists()
    later = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("4",)))
    assert "held a grant on this case" in refused(turned_reviewer(member), later)


def test_an_ex_filer_cannot_decide(open_case, lead, member, store):
    draft = file_request(open_case, member, subjects=("5",))
    actions.request_withdraw(actor=member, request=draft)
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    assert CaseMembership.objects.filter(case=open_case, user=member, involvement=Involvement.REQUESTER).exists()
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead))
    refused(turned_reviewer(member), request)


def test_the_filer_of_another_request_alone_is_not_independent(submitted_request, open_case, reviewer):
    """Involvement as a filer counts on its own (rows kept by the backfill, say, for a request whose
    filer's team period predates the history)."""
    CaseMembership.objects.create(
        case=open_case, user=reviewer, involvement=Involvement.REQUESTER, joined_at=open_case.created_at
    )
    assert "filed a request on this case" in independence_problem(reviewer, submitted_request)
    assert submitted_request not in review_queue_for(reviewer)


def test_involvement_in_another_case_does_not_count(open_case, lead, member, reviewer, store):
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    insider = turned_reviewer(member)
    other = open_case_for(lead, reviewer)
    request = actions.request_submit(actor=lead, request=file_request(other, lead))
    assert can_decide(insider, request)
    assert request in review_queue_for(insider)


# --- team changes while a decision is pending -------------------------------------------------------


def test_team_change_on_a_case_awaiting_approval_alerts_oversight(lead, member, other_investigator):
    case = actions.case_open(
        actor=lead, title="Leak", allegation="A leak.", case_type="misconduct", purpose="Find it.", team=[member]
    )
    alerts_scan()
    assert not Alert.objects.filter(kind=TEAM_ALERT).exists()  # the team a case is opened with is no change
    actions.case_add_member(actor=lead, case=case, user=other_investigator)
    actions.case_remove_member(actor=lead, case=case, user=member)
    alerts_scan()
    added, removed = Alert.objects.filter(kind=TEAM_ALERT, case=case).order_by("event_seq")
    assert added.details["change"] == "added" and added.details["member_id"] == other_investigator.pk
    assert removed.details["change"] == "removed" and removed.details["member_id"] == member.pk
    assert removed.details["decision_pending"] == {"case": True, "requests": []}
    assert added.user == lead and "approval" in added.summary
    event = AuditEvent.objects.filter(action="case.member_removed").latest("seq")
    assert event.details["decision_pending"] == {"case": True}
    assert AuditEvent.objects.filter(action="alert.raised", target_id=str(removed.pk)).exists()


def test_team_change_with_a_request_submitted_alerts_oversight(submitted_request, open_case, lead, member):
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    alerts_scan()
    alert = Alert.objects.get(kind=TEAM_ALERT)
    assert alert.details["decision_pending"] == {"case": False, "requests": [submitted_request.pk]}
    assert alert.request == submitted_request and alert.case == open_case


def test_team_change_with_nothing_pending_raises_no_alert(open_case, lead, member, other_investigator):
    actions.case_add_member(actor=lead, case=open_case, user=other_investigator)
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    alerts_scan()
    assert not Alert.objects.filter(kind=TEAM_ALERT).exists()
    assert "decision_pending" not in AuditEvent.objects.filter(action="case.member_removed").get().details


# --- the history and its backfill ------------------------------------------------------------------


def _history() -> set[tuple]:
    rows = CaseMembership.objects.values_list("case_id", "user_id", "involvement", "grant_id", "left_at")
    return {(case, user, involvement, grant, left_at is None) for case, user, involvement, grant, left_at in rows}


def test_backfill_rebuilds_the_history_from_the_tables_and_the_ledger(open_case, lead, member, second_reviewer, store):
    """The data migration's backfill, run on state built through the actions, finds every period."""
    from importlib import import_module

    backfill = import_module("investigations.migrations.0006_case_membership_history").backfill
    first = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("3",)))
    actions.request_decide(actor=second_reviewer, request=first, outcome="approve", grantees=[member])
    file_request(open_case, member, subjects=("5",))
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    extra = make_user("extra", [Role.INVESTIGATOR])
    actions.case_add_member(actor=lead, case=open_case, user=extra)
    written = _history()
    assert (open_case.pk, member.pk, "team", None, False) in written
    assert (open_case.pk, member.pk, "grantee", first.grant.pk, False) in written
    assert (open_case.pk, lead.pk, "grantee", first.grant.pk, True) in written
    CaseMembership.objects.all().delete()
    backfill(django_apps, None)
    assert _history() == written
