"""Administrators cannot act as someone else, or change who may do what, unrecorded.

Attacked as the two kinds of administrator: staff holding every user and token permission
(``user_manager``) and a superuser. Every change to a user through the admin must leave its
own ledger event; a password reset ends the user's sessions and tokens; no API token can be
minted for anyone.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import User
from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.investigations.matrix import events_since, ledger_mark

pytestmark = pytest.mark.django_db

ADMINS = ["user_manager", "superuser"]
NEW_PASSWORD = "an-admin-chosen-passphrase-31"


@pytest.fixture
def user_manager(admin_user) -> User:
    """Staff with every model permission on users and API tokens."""
    codenames = [f"{verb}_{model}" for verb in ("add", "change", "delete", "view") for model in ("user", "authtoken")]
    admin_user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=admin_user.pk)


@pytest.fixture
def admin_client(request, client) -> tuple[Client, User]:
    persona = request.getfixturevalue(request.param)
    client.force_login(persona)
    return client, persona


def _change_form(user: User, **overrides) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "groups": list(user.groups.values_list("pk", flat=True)),
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    if user.is_active:
        data["is_active"] = "on"
    if user.is_staff:
        data["is_staff"] = "on"
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def _post_change(client: Client, user: User, **overrides):
    response = client.post(reverse("admin:accounts_user_change", args=[user.pk]), _change_form(user, **overrides))
    assert response.status_code == 302, response.context["adminform"].form.errors
    return response


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_creating_a_user_in_the_admin_is_recorded(admin_client):
    client, persona = admin_client
    mark = ledger_mark()
    response = client.post(
        reverse("admin:accounts_user_add"),
        {"username": "newcomer", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(username="newcomer")
    assert user.check_password(NEW_PASSWORD) and not user.is_staff and not user.is_superuser
    assert events_since(mark) == [Action.USER_CREATED]
    assert AuditEvent.objects.get(action=Action.USER_CREATED, target_id=str(user.pk)).actor_id == persona.pk


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_a_password_reset_in_the_admin_is_recorded_and_logs_the_user_out(admin_client, lead):
    client, persona = admin_client
    victim_browser = Client()
    victim_browser.force_login(lead)
    _, token = AuthToken.objects.create(user=lead)
    mark = ledger_mark()
    response = client.post(
        reverse("admin:auth_user_password_change", args=[lead.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "set_usable_password": "true"},
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.check_password(NEW_PASSWORD)
    assert events_since(mark) == [Action.USER_PASSWORD_CHANGED]
    event = AuditEvent.objects.get(action=Action.USER_PASSWORD_CHANGED)
    assert event.actor_id == persona.pk and event.target_id == str(lead.pk)
    assert event.details["sessions_ended"] == 1 and event.details["tokens_revoked"] == 1
    # The administrator cannot keep a session or token of the user's alive: both are gone.
    assert victim_browser.get(reverse("home")).status_code == 302
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/me/").status_code == 401


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_disabling_password_login_in_the_admin_is_recorded(admin_client, lead):
    client, _ = admin_client
    mark = ledger_mark()
    response = client.post(
        reverse("admin:auth_user_password_change", args=[lead.pk]), {"usable_password": "false", "unset-password": "1"}
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert not lead.has_usable_password()
    assert events_since(mark) == [Action.USER_PASSWORD_CHANGED]
    assert AuditEvent.objects.get(action=Action.USER_PASSWORD_CHANGED).details["password_login"] is False


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
@pytest.mark.parametrize(
    ("overrides", "event", "details"),
    [
        ({"username": "lead_renamed"}, Action.USER_UPDATED, {"changes": {"username": ["lead", "lead_renamed"]}}),
        (
            {"email": "other@example.org"},
            Action.USER_UPDATED,
            {"changes": {"email": ["lead@example.org", "other@example.org"]}},
        ),
        ({"first_name": "Lea"}, Action.USER_UPDATED, {"changes": {"first_name": ["", "Lea"]}}),
        ({"is_staff": "on"}, Action.USER_PRIVILEGES_CHANGED, None),
        ({"groups": []}, Action.USER_ROLES_CHANGED, {"before": ["investigator"], "after": []}),
    ],
    ids=["username", "email", "name", "staff", "roles"],
)
def test_each_change_in_the_admin_is_its_own_ledger_event(admin_client, lead, overrides, event, details):
    client, persona = admin_client
    mark = ledger_mark()
    _post_change(client, lead, **overrides)
    assert events_since(mark) == [event]
    recorded = AuditEvent.objects.get(action=event)
    assert recorded.actor_id == persona.pk and recorded.target_id == str(lead.pk)
    if details is not None:
        assert recorded.details == details


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_granting_staff_names_what_was_granted(admin_client, lead):
    client, _ = admin_client
    _post_change(client, lead, is_staff="on")
    lead.refresh_from_db()
    assert lead.is_staff
    event = AuditEvent.objects.get(action=Action.USER_PRIVILEGES_CHANGED)
    assert event.details["granted"] == ["is_staff"] and event.details["withdrawn"] == []


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_superuser_status_cannot_be_granted_in_the_admin(admin_client, lead):
    client, _ = admin_client
    mark = ledger_mark()
    client.post(reverse("admin:accounts_user_change", args=[lead.pk]), _change_form(lead, is_superuser="on"))
    lead.refresh_from_db()
    assert not lead.is_superuser
    assert events_since(mark) == []


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_saving_an_unchanged_user_records_nothing_else(admin_client, lead):
    client, _ = admin_client
    mark = ledger_mark()
    _post_change(client, lead)
    assert events_since(mark) == []


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_reactivating_in_the_admin_is_recorded(admin_client, lead):
    client, _ = admin_client
    lead.is_active = False
    lead.save(update_fields=["is_active"])
    mark = ledger_mark()
    _post_change(client, lead, is_active="on")
    lead.refresh_from_db()
    assert lead.is_active
    assert Action.USER_REACTIVATED in events_since(mark)


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_a_legacy_dual_role_user_is_not_reactivated(admin_client):
    from tests.conftest import make_legacy_user

    client, _ = admin_client
    legacy = make_legacy_user("legacy", ["investigator", "legal_reviewer"])
    legacy.is_active = False
    legacy.save(update_fields=["is_active"])
    form = _change_form(legacy, is_active="on", groups=list(legacy.groups.values_list("pk", flat=True)))
    response = client.post(reverse("admin:accounts_user_change", args=[legacy.pk]), form)
    assert response.status_code == 200  # the roles field refuses the pair before anything is saved
    legacy.refresh_from_db()
    assert not legacy.is_active


# --- API tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_no_token_can_be_minted_for_someone_else_in_the_admin(admin_client, lead):
    client, _ = admin_client
    assert client.get(reverse("admin:knox_authtoken_add")).status_code == 403
    response = client.post(reverse("admin:knox_authtoken_add"), {"user": lead.pk, "expiry": ""})
    assert response.status_code == 403
    assert not AuthToken.objects.filter(user=lead).exists()


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_a_token_is_read_only_and_its_deletion_is_recorded(admin_client, lead):
    client, persona = admin_client
    instance, _ = AuthToken.objects.create(user=lead)
    expiry = instance.expiry
    change_url = reverse("admin:knox_authtoken_change", args=[instance.pk])
    assert client.get(change_url).status_code == 200
    client.post(change_url, {"user": persona.pk, "expiry": ""})
    instance.refresh_from_db()
    assert instance.user_id == lead.pk and instance.expiry == expiry
    mark = ledger_mark()
    response = client.post(reverse("admin:knox_authtoken_delete", args=[instance.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not AuthToken.objects.filter(pk=instance.pk).exists()
    assert events_since(mark) == [Action.API_TOKEN_REVOKED]
    event = AuditEvent.objects.get(action=Action.API_TOKEN_REVOKED)
    assert event.actor_id == persona.pk and event.target_id == str(lead.pk)
    assert event.details == {"token_key": instance.token_key, "by_self": False}


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_bulk_token_revocation_is_recorded_per_token(admin_client, lead, member):
    client, _ = admin_client
    tokens = [AuthToken.objects.create(user=user)[0] for user in (lead, member)]
    mark = ledger_mark()
    response = client.post(
        reverse("admin:knox_authtoken_changelist"),
        {"action": "revoke_selected", "_selected_action": [token.pk for token in tokens]},
    )
    assert response.status_code == 302
    assert not AuthToken.objects.exists()
    assert events_since(mark) == [Action.API_TOKEN_REVOKED, Action.API_TOKEN_REVOKED]


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_the_roles_themselves_are_not_editable(admin_client):
    client, _ = admin_client
    group = Group.objects.get(name="investigator")
    assert client.get(f"/admin/auth/group/{group.pk}/change/").status_code == 404
    assert client.post("/admin/auth/group/add/", {"name": "shadow"}).status_code == 404
    assert not Group.objects.filter(name="shadow").exists()


# --- management commands ----------------------------------------------------------------------


def test_createsuperuser_goes_through_the_actions(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)
    mark = ledger_mark()
    call_command("createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.org")
    boss = User.objects.get(username="boss")
    assert boss.is_superuser and boss.is_staff and boss.check_password(NEW_PASSWORD)
    assert events_since(mark) == [Action.USER_CREATED, Action.USER_PRIVILEGES_CHANGED]
    granted = AuditEvent.objects.get(action=Action.USER_PRIVILEGES_CHANGED).details["granted"]
    assert granted == ["is_superuser"]


def test_set_password_command_goes_through_the_action(monkeypatch, lead):
    monkeypatch.setenv("CUSTOS_PASSWORD", NEW_PASSWORD)
    mark = ledger_mark()
    call_command("set_password", "lead")
    lead.refresh_from_db()
    assert lead.check_password(NEW_PASSWORD) and not lead.check_password(PASSWORD)
    assert events_since(mark) == [Action.USER_PASSWORD_CHANGED]


@pytest.mark.parametrize("admin_client", ADMINS, indirect=True)
def test_an_administrators_own_password_change_in_the_admin_is_recorded(admin_client):
    client, persona = admin_client
    other_session = Client()
    other_session.force_login(persona)
    mark = ledger_mark()
    response = client.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    persona.refresh_from_db()
    assert persona.check_password(NEW_PASSWORD)
    assert events_since(mark) == [Action.USER_PASSWORD_CHANGED]
    assert AuditEvent.objects.get(action=Action.USER_PASSWORD_CHANGED).details["by_self"] is True
    assert client.get(reverse("admin:index")).status_code == 200  # this session goes on
    assert other_session.get(reverse("admin:index")).status_code == 302  # any other ended
