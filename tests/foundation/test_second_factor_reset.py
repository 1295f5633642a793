"""Resetting a user's second factor: staff only, never one's own, two different staff members
for a staff account; the factors go, and so do the user's sessions and API tokens; on the
ledger and raised as an oversight alert."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from accounts import factors
from accounts.actions import second_factor_reset, second_factor_reset_confirm
from accounts.models import SecondFactorReset
from audit.events import Action
from audit.models import AuditEvent
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind, AlertSeverity
from tests.conftest import make_user, sign_in

pytestmark = pytest.mark.django_db

REASON = "Lost her phone on a trip; called the service desk from her desk line."


@pytest.fixture
def second_admin(db):
    return make_user("admin2", [], is_staff=True)


def test_staff_reset_a_reviewers_factor_at_once_and_everything_they_had_open_ends(reviewer, admin_user):
    browser = sign_in(Client(), reviewer)
    AuthToken.objects.create(user=reviewer)
    reset = second_factor_reset(actor=admin_user, user=reviewer, reason=REASON)
    assert not reset.is_pending and reset.proposed_by == admin_user and reset.confirmed_by is None
    assert not Authenticator.objects.filter(user=reviewer).exists()
    assert not AuthToken.objects.filter(user=reviewer).exists()
    assert browser.get(reverse("home")).status_code == 302  # signed out
    event = AuditEvent.objects.get(action=Action.USER_SECOND_FACTOR_RESET)
    assert event.actor_id == admin_user.pk and event.target_id == str(reviewer.pk)
    assert event.details["removed"] == ["totp"] and event.details["sessions_ended"] == 1
    assert event.details["tokens_revoked"] == 1 and event.details["reason"] == REASON
    # The next sign-in takes the reviewer through enrolment again.
    assert factors.enrolment_missing(reviewer)


def test_a_reset_raises_an_oversight_alert(reviewer, admin_user):
    second_factor_reset(actor=admin_user, user=reviewer, reason=REASON)
    alerts_scan()
    alert = Alert.objects.get(kind=AlertKind.SECOND_FACTOR_RESET)
    assert alert.severity == AlertSeverity.WARNING and "reviewer" in alert.summary and "admin" in alert.summary


def test_a_staff_accounts_reset_takes_a_second_staff_member(admin_user, second_admin, superuser):
    reset = second_factor_reset(actor=second_admin, user=admin_user, reason=REASON)
    assert reset.is_pending and factors.has_second_factor(admin_user)  # proposed, nothing done
    assert AuditEvent.objects.filter(action=Action.USER_SECOND_FACTOR_RESET_PROPOSED).count() == 1
    with pytest.raises(PermissionDenied):  # the proposer cannot confirm
        second_factor_reset_confirm(actor=second_admin, reset=reset)
    with pytest.raises(PermissionDenied):  # nor the account's owner
        second_factor_reset_confirm(actor=admin_user, reset=reset)
    assert factors.has_second_factor(admin_user)
    second_factor_reset_confirm(actor=superuser, reset=reset)
    assert not factors.has_second_factor(admin_user)
    event = AuditEvent.objects.get(action=Action.USER_SECOND_FACTOR_RESET)
    assert event.details["proposed_by"] == "admin2" and event.details["confirmed_by"] == "root"
    alerts_scan()
    assert Alert.objects.get(kind=AlertKind.SECOND_FACTOR_RESET).severity == AlertSeverity.CRITICAL
    with pytest.raises(ValidationError):  # done once
        second_factor_reset_confirm(actor=second_admin, reset=reset)


def test_no_one_resets_their_own_factor(admin_user, reviewer):
    with pytest.raises(PermissionDenied):
        second_factor_reset(actor=admin_user, user=admin_user, reason=REASON)
    with pytest.raises(PermissionDenied):  # not staff
        second_factor_reset(actor=reviewer, user=reviewer, reason=REASON)
    assert factors.has_second_factor(admin_user) and factors.has_second_factor(reviewer)
    assert not SecondFactorReset.objects.exists()


@pytest.mark.parametrize("persona", ["reviewer", "auditor", "lead", "outsider"])
def test_only_staff_reset(request, persona, senior_reviewer):
    actor = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        second_factor_reset(actor=actor, user=senior_reviewer, reason=REASON)
    assert factors.has_second_factor(senior_reviewer)


def test_a_deactivated_staff_member_resets_nothing(reviewer, second_admin):
    second_admin.is_active = False
    second_admin.save(update_fields=["is_active"])
    with pytest.raises(PermissionDenied):
        second_factor_reset(actor=second_admin, user=reviewer, reason=REASON)


def test_a_proposal_confirmed_after_the_proposer_left_still_takes_another_person(admin_user, second_admin):
    reset = second_factor_reset(actor=second_admin, user=admin_user, reason=REASON)
    with pytest.raises(ValidationError):  # one pending proposal per user
        second_factor_reset(actor=second_admin, user=admin_user, reason=REASON)
    with pytest.raises(PermissionDenied):
        second_factor_reset_confirm(actor=second_admin, reset=reset)


def test_a_reason_is_required(admin_user, reviewer):
    with pytest.raises(ValidationError) as error:
        second_factor_reset(actor=admin_user, user=reviewer, reason="lost")
    assert "reason" in error.value.message_dict
    assert factors.has_second_factor(reviewer)


def test_the_admin_resets_through_the_action_and_refuses_ones_own(reviewer, superuser, second_admin):
    staff = sign_in(Client(), superuser)
    add = reverse("admin:accounts_secondfactorreset_add")
    own = staff.post(add, {"user": superuser.pk, "reason": REASON})
    assert own.status_code == 200 and "No one resets their own" in own.content.decode()
    assert staff.post(add, {"user": reviewer.pk, "reason": REASON}).status_code == 302
    assert not factors.has_second_factor(reviewer)
    # A staff account: proposed here, confirmed by another staff member with the list action.
    staff.post(add, {"user": second_admin.pk, "reason": REASON})
    reset = SecondFactorReset.objects.get(user=second_admin)
    changelist = reverse("admin:accounts_secondfactorreset_changelist")
    staff.post(changelist, {"action": "confirm_resets", "_selected_action": [reset.pk]})
    reset.refresh_from_db()
    assert reset.is_pending and factors.has_second_factor(second_admin)  # the proposer cannot confirm
