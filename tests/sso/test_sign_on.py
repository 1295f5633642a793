"""Signing in through the identity provider: matched on ``sub`` alone, roles from the provider
through the accounts actions, refusals recorded and alerted, the ``next`` kept on the site."""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.management import call_command

from accounts.actions import user_link_sso
from accounts.models import User
from audit.events import Action
from audit.models import AuditEvent
from investigations.actions import user_deactivate
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind, AlertSeverity
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _signed_in(client) -> User | None:
    pk = client.session.get("_auth_user_id")
    return User.objects.get(pk=pk) if pk else None


def _refusal(reason: str) -> AuditEvent:
    return AuditEvent.objects.get(action=Action.AUTH_SSO_REFUSED, details__reason=reason)


def test_first_sign_in_creates_the_user_with_the_mapped_roles(sso, client):
    sub = sso.person("ines.sso", groups=["idp-investigators", "staff-everyone"], first_name="Ines", last_name="Sso")
    response = sso.sign_in(client, "ines.sso")
    assert response.status_code == 302 and response["Location"] == "/"
    user = _signed_in(client)
    assert user.username == "ines.sso" and user.email == "ines.sso@idp.example.org" and user.first_name == "Ines"
    assert user.roles_sorted == ["investigator"] and not user.has_usable_password() and not user.is_staff
    assert SocialAccount.objects.get(user=user).uid == sub
    linked = AuditEvent.objects.get(action=Action.USER_SSO_LINKED)
    assert linked.details == {"username": "ines.sso", "provider": "sso", "sub": sub, "created": True}
    assert AuditEvent.objects.filter(action=Action.USER_CREATED, target_id=str(user.pk)).exists()
    login = AuditEvent.objects.get(action=Action.AUTH_LOGIN, actor=user)
    assert login.details == {"method": "sso", "sub": sub}
    assert client.get("/").status_code == 200


def test_sign_ins_are_matched_on_sub_and_roles_follow_the_provider(sso, client):
    sso.person("omar.sso", groups=["idp-investigators"])
    sso.sign_in(client, "omar.sso")
    user = _signed_in(client)
    client.logout()
    sso.person("omar.sso", groups=["idp-senior-legal"])
    sso.sign_in(client, "omar.sso")
    assert _signed_in(client) == user
    user.refresh_from_db()
    assert user.roles_sorted == ["legal_reviewer", "senior_legal_reviewer"]
    change = AuditEvent.objects.get(action=Action.USER_ROLES_CHANGED, target_id=str(user.pk), details__source="sso")
    assert change.actor_id is None
    assert change.details["before"] == ["investigator"]
    assert change.details["after"] == ["legal_reviewer", "senior_legal_reviewer"]
    # The same roles again: nothing to change, nothing recorded.
    client.logout()
    sso.sign_in(client, "omar.sso")
    assert AuditEvent.objects.filter(action=Action.USER_ROLES_CHANGED, details__source="sso").count() == 1


def test_renaming_at_the_provider_to_a_local_admins_name_takes_nothing_over(sso, client, admin_user):
    sso.person("mallory.sso", groups=[])
    sso.sign_in(client, "mallory.sso")
    mallory = _signed_in(client)
    client.logout()
    # Mallory becomes "admin" at the provider, with the admin's e-mail: still Mallory here.
    sso.provider.change_user("mallory.sso", rename_to="admin", email=admin_user.email)
    try:
        response = sso.sign_in(client, "admin")
    finally:
        sso.provider.change_user("admin", rename_to="mallory.sso", email="mallory.sso@idp.example.org")
    assert response.status_code == 302 and _signed_in(client) == mallory
    mallory.refresh_from_db()
    assert mallory.username == "mallory.sso" and not mallory.is_staff
    assert not SocialAccount.objects.filter(user=admin_user).exists()


@pytest.mark.parametrize(
    ("username", "email"),
    [
        ("admin", "someone-else@idp.example.org"),  # the admin's username
        ("ADMIN", "someone-else@idp.example.org"),  # in another case
        ("\u0430dmin", "someone-else@idp.example.org"),  # Cyrillic a: looks like it
        ("not-the-admin", "admin@example.org"),  # the admin's e-mail
    ],
)
def test_a_new_identity_naming_a_local_account_is_refused_and_linked_to_nothing(
    sso, client, admin_user, username, email
):
    sso.person(username, email=email)
    response = sso.sign_in(client, username)
    assert response.status_code == 403 and "never takes over an existing account" in response.content.decode()
    assert _signed_in(client) is None
    assert not SocialAccount.objects.exists() and User.objects.count() == 1
    assert _refusal("identity_taken").details["username"] == username
    alerts_scan()
    assert Alert.objects.get(kind=AlertKind.SSO_REFUSED).severity == AlertSeverity.WARNING


def test_roles_that_break_the_separation_of_duties_are_refused_whole(sso, client):
    sso.person("dual.sso", groups=["idp-investigators"])
    sso.sign_in(client, "dual.sso")
    user = _signed_in(client)
    client.logout()
    sso.person("dual.sso", groups=["idp-investigators", "idp-legal"])
    response = sso.sign_in(client, "dual.sso")
    assert response.status_code == 403 and "may not hold together" in response.content.decode()
    assert _signed_in(client) is None
    user.refresh_from_db()
    assert user.roles_sorted == ["investigator"]  # what they had; no dual-role user, ever
    refusal = _refusal("role_conflict")
    assert refusal.target_id == str(user.pk) and refusal.details["roles_claimed"] == ["investigator", "legal_reviewer"]
    alerts_scan()
    alert = Alert.objects.get(kind=AlertKind.SSO_REFUSED)
    assert alert.severity == AlertSeverity.CRITICAL and alert.user_id == user.pk


def test_a_new_identity_with_conflicting_roles_creates_no_user(sso, client):
    sso.person("dual-new.sso", groups=["idp-auditors", "idp-legal"])
    assert sso.sign_in(client, "dual-new.sso").status_code == 403
    assert not User.objects.filter(username="dual-new.sso").exists() and not SocialAccount.objects.exists()


def test_a_user_deactivated_here_stays_out_whatever_the_provider_says(sso, client, admin_user):
    sso.person("leaver.sso", groups=["idp-investigators"])
    sso.sign_in(client, "leaver.sso")
    leaver = _signed_in(client)
    client.logout()
    user_deactivate(actor=admin_user, user=leaver)
    sso.person("leaver.sso", groups=["idp-auditors"])  # still active at the provider, new groups
    response = sso.sign_in(client, "leaver.sso")
    assert response.status_code == 403 and "deactivated" in response.content.decode()
    assert _signed_in(client) is None
    leaver.refresh_from_db()
    assert not leaver.is_active and leaver.groups.get().name == "investigator"  # the provider changed nothing
    assert _refusal("deactivated").target_id == str(leaver.pk)
    alerts_scan()
    assert Alert.objects.get(kind=AlertKind.SSO_REFUSED).user_id == leaver.pk


def test_without_just_in_time_users_an_unknown_sub_waits_for_staff_to_link_it(sso, client, admin_user, settings):
    settings.CUSTOS_SSO = {**settings.CUSTOS_SSO, "CREATE_USERS": False}
    sub = sso.person("newcomer.sso", groups=["idp-auditors"])
    response = sso.sign_in(client, "newcomer.sso")
    assert response.status_code == 403 and sub in response.content.decode()
    assert _refusal("not_provisioned").details["sub"] == sub and not User.objects.filter(username="newcomer.sso")
    alerts_scan()
    assert not Alert.objects.filter(kind=AlertKind.SSO_REFUSED).exists()  # recorded, not alerted
    # Staff provision the account under the name they choose and link the sub.
    local = make_user("n.comer", [])
    call_command("sso_link", "n.comer", sub, "--actor", "admin")
    client.logout()
    sso.sign_in(client, "newcomer.sso")
    assert _signed_in(client) == local
    assert User.objects.get(pk=local.pk).roles_sorted == ["auditor"]  # a fresh load: roles are read once per object
    linked = AuditEvent.objects.get(action=Action.USER_SSO_LINKED)
    assert linked.actor_id == admin_user.pk and linked.details["created"] is False


def test_a_sub_links_to_one_user_only(sso, lead, member):
    from django.core.exceptions import ValidationError

    user_link_sso(actor=None, user=lead, provider="sso", sub="sub-1")
    with pytest.raises(ValidationError):
        user_link_sso(actor=None, user=member, provider="sso", sub="sub-1")
    with pytest.raises(ValidationError):
        user_link_sso(actor=None, user=lead, provider="sso", sub="sub-2")


def test_roles_kept_in_custos_are_not_touched_by_the_provider(sso, client, settings):
    settings.CUSTOS_SSO = {**settings.CUSTOS_SSO, "ROLES_CLAIM": ""}
    sso.person("local-roles.sso", groups=["idp-auditors", "idp-investigators"])  # ignored: no claim read
    sso.sign_in(client, "local-roles.sso")
    user = _signed_in(client)
    assert user.roles_sorted == []
    assert not AuditEvent.objects.filter(action=Action.USER_ROLES_CHANGED).exists()


@pytest.mark.parametrize(
    ("next_url", "lands"),
    [
        ("/cases/", "/cases/"),
        ("https://evil.example.org/", "/"),
        ("//evil.example.org/", "/"),
        ("/\\evil.example.org", "/"),
    ],
)
def test_next_stays_on_the_site(sso, client, next_url, lands):
    sso.person("nexter.sso", groups=["idp-investigators"])
    response = sso.sign_in(client, "nexter.sso", next_url)
    assert response.status_code == 302 and response["Location"] == lands


def test_a_callback_that_does_not_check_out_signs_in_no_one(sso, client):
    sso.person("forger.sso", groups=["idp-investigators"])
    sso.start(client)
    response = client.get("/accounts/oidc/sso/login/callback/?code=forged&state=forged")
    assert response.status_code in (200, 401) and "Sign-in failed" in response.content.decode()
    assert _signed_in(client) is None
    failed = AuditEvent.objects.get(action=Action.AUTH_LOGIN_FAILED)
    assert failed.details["sso_error"]


def test_the_login_page_offers_the_provider(sso, client, settings):
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Test IdP" in page and "Break-glass" not in page
    settings.LOCAL_LOGIN, settings.BREAK_GLASS_USERNAME = False, "glass"
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Test IdP" in page and "Break-glass sign-in" in page
    settings.CUSTOS_SSO = {**settings.CUSTOS_SSO, "ISSUER": ""}
    settings.LOCAL_LOGIN = True
    assert "Sign in with" not in client.get("/accounts/login/").content.decode()


def test_with_local_login_off_staff_reach_the_admin_through_the_provider(sso, client, admin_user, settings):
    settings.LOCAL_LOGIN, settings.BREAK_GLASS_USERNAME = False, "glass"
    # Staff need a second factor: the provider asserts one (amr), so Custos does not ask for its own.
    sub = sso.person("admin.idp", groups=[], second_factor=True)
    user_link_sso(actor=None, user=admin_user, provider="sso", sub=sub)
    # The admin's login sends to the login page, whose sign-on button carries the way back.
    response = client.get("/admin/login/?next=/admin/")
    page = client.get(response["Location"]).content.decode()
    assert "Sign in with Test IdP" in page and 'name="next" value="/admin/"' in page
    response = sso.sign_in(client, "admin.idp", "/admin/")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    admin_user.refresh_from_db()
    assert admin_user.is_staff and not AuditEvent.objects.filter(action=Action.AUTH_BREAK_GLASS).exists()


@pytest.mark.parametrize("username", ["glass", "GLASS", "g\u0406ass"])  # the name, its case, a look-alike
def test_the_break_glass_name_is_never_taken_by_a_sign_on(sso, client, settings, username):
    settings.BREAK_GLASS_USERNAME = "glass"  # not created yet: the name is reserved all the same
    sso.person(username, email=f"{username.encode('unicode_escape').decode()}@idp.example.org".replace("\\", ""))
    assert sso.sign_in(client, username).status_code == 403
    assert not User.objects.exists() and _refusal("identity_taken")
