"""Separation of duties by role: investigator and legal reviewer (senior included) exclude each
other, auditor excludes both. Enforced wherever roles are set; ``check --deploy`` reports rows
from before the rule."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.actions import user_create, user_set_roles
from accounts.models import User
from accounts.roles import Role, role_conflicts
from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import make_legacy_user, make_user

pytestmark = pytest.mark.django_db

INVESTIGATOR, LEGAL, SENIOR, AUDITOR = (role.value for role in Role)
FORBIDDEN = [
    [INVESTIGATOR, LEGAL],
    [INVESTIGATOR, SENIOR],
    [INVESTIGATOR, LEGAL, SENIOR],
    [AUDITOR, INVESTIGATOR],
    [AUDITOR, LEGAL],
    [AUDITOR, SENIOR],
    [AUDITOR, LEGAL, SENIOR],
]
ALLOWED = [[], [INVESTIGATOR], [LEGAL], [SENIOR], [LEGAL, SENIOR], [AUDITOR]]


@pytest.mark.parametrize("roles", FORBIDDEN, ids="+".join)
def test_forbidden_combinations_are_refused_at_creation(roles):
    with pytest.raises(ValidationError) as error:
        user_create(actor=None, username="hat_collector", password="a-long-test-password-42", roles=roles)
    assert "roles" in error.value.message_dict
    assert "second person" in " ".join(error.value.message_dict["roles"])
    assert not User.objects.filter(username="hat_collector").exists()
    assert not AuditEvent.objects.filter(action=Action.USER_CREATED).exists()


@pytest.mark.parametrize("roles", ALLOWED, ids=lambda roles: "+".join(roles) or "none")
def test_allowed_combinations(roles):
    assert role_conflicts(roles) == []
    user = user_create(actor=None, username="one_hat", password="a-long-test-password-42", roles=roles)
    assert user.role_names == set(roles)


@pytest.mark.parametrize("roles", FORBIDDEN, ids="+".join)
def test_forbidden_combinations_are_refused_when_roles_change(roles, admin_user):
    user = make_user("one_hat", [roles[-1]])
    with pytest.raises(ValidationError) as error:
        user_set_roles(actor=admin_user, user=user, roles=roles)
    assert "roles" in error.value.message_dict
    assert set(User.objects.get(pk=user.pk).groups.values_list("name", flat=True)) == {roles[-1]}
    assert not AuditEvent.objects.filter(action=Action.USER_ROLES_CHANGED).exists()


def test_the_create_user_command_refuses_two_hats(monkeypatch):
    monkeypatch.setenv("CUSTOS_PASSWORD", "correct-horse-battery-staple")
    with pytest.raises(CommandError, match="investigator role cannot be combined with legal reviewer"):
        call_command("create_user", "nora", "--role", "investigator", "--role", "legal_reviewer")
    assert not User.objects.filter(username="nora").exists()


def _admin_change(client, user: User, roles: list[str]):
    return client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        {
            "username": user.username,
            "first_name": "",
            "last_name": "",
            "email": user.email,
            "is_active": "on",
            "groups": list(Group.objects.filter(name__in=roles).values_list("pk", flat=True)),
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        },
    )


@pytest.fixture
def user_manager(admin_user):
    admin_user.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    return User.objects.get(pk=admin_user.pk)


@pytest.mark.parametrize("persona", ["user_manager", "superuser"])
def test_the_admin_shows_a_field_error_and_changes_nothing(persona, request, client, lead):
    client.force_login(request.getfixturevalue(persona))
    response = _admin_change(client, lead, [INVESTIGATOR, LEGAL])
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "investigator role cannot be combined" in " ".join(errors["groups"])
    assert set(User.objects.get(pk=lead.pk).groups.values_list("name", flat=True)) == {INVESTIGATOR}
    assert not AuditEvent.objects.filter(action=Action.USER_ROLES_CHANGED).exists()


def test_the_admin_still_sets_one_hat(client, user_manager, lead):
    client.force_login(user_manager)
    response = _admin_change(client, lead, [AUDITOR])
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(pk=lead.pk).role_names == {AUDITOR}
    event = AuditEvent.objects.get(action=Action.USER_ROLES_CHANGED)
    assert event.details == {"before": [INVESTIGATOR], "after": [AUDITOR]}


def _errors(deploy: bool) -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks(include_deployment_checks=deploy) if message.id == "accounts.E001"]


def test_check_deploy_reports_existing_users_with_two_hats(lead, reviewer, auditor):
    assert _errors(deploy=True) == []
    make_legacy_user("legacy_insider", [INVESTIGATOR, SENIOR])
    make_legacy_user("legacy_auditor", [AUDITOR, LEGAL])
    errors = _errors(deploy=True)
    assert [error.level for error in errors] == [checks.ERROR, checks.ERROR]
    assert "'legacy_auditor'" in errors[0].msg and "auditor role cannot be combined" in errors[0].msg
    assert "'legacy_insider'" in errors[1].msg and "senior legal reviewer" in errors[1].msg
    assert _errors(deploy=False) == []  # only a deployment check: management commands still run


def test_check_deploy_fails_the_command(lead):
    make_legacy_user("legacy_insider", [INVESTIGATOR, LEGAL])
    with pytest.raises(CommandError, match=r"accounts\.E001"):
        call_command("check", "--deploy", "--fail-level", "ERROR")


@pytest.mark.parametrize("action", ["create", "set_roles"])
def test_a_role_whose_group_was_deleted_is_still_given(action):
    # A role's group deleted since the migration made it (in the admin, or by a flushed test
    # database) must not make a role given silently vanish.
    someone = make_user("later.auditor")  # (make_user puts every role's group back)
    Group.objects.filter(name=Role.AUDITOR).delete()
    if action == "create":
        user = user_create(actor=None, username="new.auditor", password=None, roles=[Role.AUDITOR])
    else:
        user = user_set_roles(actor=None, user=someone, roles=[Role.AUDITOR])
    assert User.objects.get(pk=user.pk).roles_sorted == [Role.AUDITOR]
