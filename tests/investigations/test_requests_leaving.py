"""Invariant 8: leaving revokes. Closing a case revokes its grants; deactivating a user revokes
theirs (or removes them from shared grants) and removes their object permissions."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import reverse

from audit.models import AuditEvent
from investigations import actions
from investigations.access import cases_visible_to, grants_visible_to, object_perms
from investigations.errors import InvalidTransition
from investigations.models import CaseUserObjectPermission, Grant, GrantStatus

from .fixtures import file_request

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


@pytest.fixture
def shared_grant(open_case, lead, member, second_reviewer, store):
    """A grant held by ``lead`` and ``member`` on account 3."""
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("3",)))
    actions.request_decide(actor=second_reviewer, request=request, outcome="approve", grantees=[member])
    return Grant.objects.get(request=request)


def test_deactivating_revokes_sole_grants_and_leaves_shared_ones(active_grant, shared_grant, lead, member, admin_user):
    actions.user_deactivate(actor=admin_user, user=lead)
    active_grant.refresh_from_db()
    shared_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.REVOKED and active_grant.revoked_by == admin_user
    assert shared_grant.status == GrantStatus.ACTIVE
    assert list(shared_grant.grantees.all()) == [member]
    assert shared_grant.is_usable_by(member)
    lead.refresh_from_db()
    assert not lead.is_active
    assert AuditEvent.objects.filter(action="grant.revoked", target_id=str(active_grant.pk)).count() == 1
    assert AuditEvent.objects.filter(action="permission.removed", target_id=str(shared_grant.pk)).count() == 1
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.details["grants_revoked"] == [active_grant.pk]
    assert event.details["grants_left"] == [shared_grant.pk]


def test_deactivating_removes_all_object_permissions(shared_grant, lead, member, admin_user):
    assert object_perms(member, shared_grant) == {"view_grant", "query_grant"}
    actions.user_deactivate(actor=admin_user, user=member)
    assert not CaseUserObjectPermission.objects.filter(user=member).exists()
    member.is_active = True  # even if reactivated by hand, nothing is left to open
    member.save(update_fields=["is_active"])
    assert object_perms(member, shared_grant) == set()
    assert not grants_visible_to(member).exists()
    assert not cases_visible_to(member).exists()


def test_only_admins_deactivate(lead, member, reviewer):
    with pytest.raises(PermissionDenied):
        actions.user_deactivate(actor=reviewer, user=member)
    member.refresh_from_db()
    assert member.is_active


@pytest.fixture
def user_manager(admin_user):
    """The admin persona with the model permissions to manage users in the admin."""
    from django.contrib.auth.models import Permission

    admin_user.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    return type(admin_user).objects.get(pk=admin_user.pk)


def test_deactivation_through_the_admin_goes_through_the_action(active_grant, lead, user_manager, client):
    from django.contrib import admin

    from accounts.admin import UserAdmin as AccountsUserAdmin

    assert isinstance(admin.site._registry[type(lead)], AccountsUserAdmin)
    client.force_login(user_manager)
    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "deactivate_selected", "_selected_action": [lead.pk]},
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    active_grant.refresh_from_db()
    assert not lead.is_active
    assert active_grant.status == GrantStatus.REVOKED
    assert AuditEvent.objects.filter(action="user.deactivated", target_id=str(lead.pk)).exists()


def test_unticking_active_in_the_admin_form_revokes(active_grant, lead, user_manager, client):
    client.force_login(user_manager)
    url = reverse("admin:accounts_user_change", args=[lead.pk])
    response = client.post(
        url,
        {
            "username": lead.username,
            "first_name": "",
            "last_name": "",
            "email": lead.email,
            "groups": list(lead.groups.values_list("pk", flat=True)),
            "date_joined_0": lead.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": lead.date_joined.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    lead.refresh_from_db()
    active_grant.refresh_from_db()
    assert not lead.is_active
    assert active_grant.status == GrantStatus.REVOKED


def test_closing_the_case_revokes_its_active_grants(active_grant, shared_grant, open_case, lead):
    reason, both = "Case closed.", sorted([active_grant.pk, shared_grant.pk])
    assert actions.case_revoke_grants(actor=lead, case=open_case, reason=reason) == both
    for grant in (active_grant, shared_grant):
        grant.refresh_from_db()
        assert grant.status == GrantStatus.REVOKED
        assert not grant.is_usable_by(lead)
    assert AuditEvent.objects.filter(action="grant.revoked", case_reference=open_case.reference).count() == 2
    assert actions.case_revoke_grants(actor=lead, case=open_case, reason=reason) == []


def test_case_close_revokes_grants_if_present(active_grant, open_case, lead):
    """When the case actions provide ``case_close``, it must revoke the case's grants."""
    case_close = getattr(actions, "case_close", None)
    if case_close is None:
        pytest.skip("case_close is provided by the case actions")
    import inspect

    text = "Investigation finished; findings reported."
    extra = {name: text for name in inspect.signature(case_close).parameters if name not in ("actor", "case")}
    case_close(actor=lead, case=open_case, **extra)
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.REVOKED


# --- revoking ------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["second_reviewer", "reviewer", "senior_reviewer", "lead"])
def test_who_may_revoke(active_grant, request, persona):
    user = request.getfixturevalue(persona)
    actions.grant_revoke(actor=user, grant=active_grant, reason="No longer needed.")
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.REVOKED and active_grant.revoked_by == user


@pytest.mark.parametrize("persona", ["member", "other_investigator", "auditor", "superuser", "admin_user", "outsider"])
def test_who_may_not_revoke(active_grant, request, persona):
    with pytest.raises(PermissionDenied):
        actions.grant_revoke(actor=request.getfixturevalue(persona), grant=active_grant, reason="Because.")
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.ACTIVE


def test_revoking_needs_a_reason_and_happens_once(active_grant, reviewer):
    with pytest.raises(ValidationError):
        actions.grant_revoke(actor=reviewer, grant=active_grant, reason="  ")
    actions.grant_revoke(actor=reviewer, grant=active_grant, reason="Done.")
    with pytest.raises(InvalidTransition):
        actions.grant_revoke(actor=reviewer, grant=active_grant, reason="Again.")
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 1


def test_a_deactivated_requester_gets_no_grant(submitted_request, lead, reviewer, admin_user):
    actions.user_deactivate(actor=admin_user, user=lead)
    with pytest.raises(InvalidTransition):
        actions.request_decide(actor=reviewer, request=submitted_request, outcome="approve")
    assert not Grant.objects.exists()


def test_the_registry_admin_goes_through_the_actions(user_manager, client):
    from django.contrib.auth.models import Permission

    from investigations.models import ProtectedSubject

    user_manager.user_permissions.add(*Permission.objects.filter(content_type__model="protectedsubject"))
    client.force_login(user_manager)
    response = client.post(
        reverse("admin:investigations_protectedsubject_add"),
        {"account_id": "7", "category": "journalist", "note": "Reports on the company."},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = ProtectedSubject.objects.get(account_id=7)
    assert entry.added_by == user_manager
    assert AuditEvent.objects.filter(action="protected_subject.added").count() == 1
    # No removal from the admin: weakening the registry takes two senior legal reviewers.
    delete = client.post(reverse("admin:investigations_protectedsubject_delete", args=[entry.pk]), {"post": "yes"})
    assert delete.status_code == 403
    response = client.post(
        reverse("admin:investigations_protectedsubject_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk]},
    )
    assert ProtectedSubject.objects.listed().filter(account_id=7).exists()
    assert not AuditEvent.objects.filter(action__startswith="protected_subject.weakening").exists()


def test_a_case_permission_held_through_a_group_counts_like_a_direct_one(active_grant, other_investigator):
    """The chokepoints read both guardian tables: a team held as a group sees the grant's query page
    and holds the case's permissions, exactly as a directly-assigned member would, and loses both
    with the group."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from investigations.access import get_grant_for_query

    team = Group.objects.create(name="case-team-by-group")
    other_investigator.groups.add(team)
    with pytest.raises(Http404):
        get_grant_for_query(other_investigator, active_grant.pk)
    assign_perm("view_case", team, active_grant.case)
    assert get_grant_for_query(other_investigator, active_grant.pk) == active_grant
    assert object_perms(other_investigator, active_grant.case) == {"view_case"}
    other_investigator.groups.remove(team)
    with pytest.raises(Http404):
        get_grant_for_query(other_investigator, active_grant.pk)
    assert object_perms(other_investigator, active_grant.case) == set()
