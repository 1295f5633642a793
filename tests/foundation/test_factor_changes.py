"""What a user does to their own second factors on allauth's pages, and what it does to the rest
of their sign-in: red-team findings against issue 17.

- A change of factor and its ledger event are one transaction: a ledger that cannot write
  leaves no factor added (or removed).
- Enrolling a factor revokes the API tokens obtained without one (a token got with the password
  alone before enrolment, or before a role asked for a factor, must not outlive it); removing a
  factor revokes every token of the user. Each revocation is an ``api_token.revoked`` event.
- Seeing or downloading the recovery codes is recorded (``auth.recovery_codes_viewed``).
"""

from __future__ import annotations

import itertools

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

import audit
from accounts import factors
from accounts.actions import user_set_roles
from accounts.models import User
from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from custos_testing.totp import totp
from tests.conftest import PASSWORD, make_user, sign_in
from tests.stepup import unused_code

pytestmark = pytest.mark.django_db

_addresses = (f"203.0.113.{n}" for n in itertools.cycle(range(1, 255)))


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # throttles and used codes
    yield
    cache.clear()


def _token(user, otp: str = "") -> str:
    body = {"username": user.username, "password": PASSWORD, **({"otp": otp} if otp else {})}
    response = APIClient().post("/api/v1/auth/token/", body, format="json", REMOTE_ADDR=next(_addresses))
    assert response.status_code == 201, response.content
    return response.json()["token"]


def _me(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/me/").status_code


def _enrol_on_the_pages(client: Client) -> str:
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    response = client.post(reverse("mfa_activate_totp"), {"code": totp(secret)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return secret


def _confirmed(client: Client) -> None:
    """allauth asks for the password again before a change of factor (past the first enrolment)."""
    assert client.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code == 302


def _events(action: Action, user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("seq"))


def _ledger_refuses(monkeypatch, refused: Action) -> None:
    real = audit.record

    def record(**kwargs):
        if kwargs["action"] == refused:
            raise RuntimeError("ledger unavailable")
        return real(**kwargs)

    monkeypatch.setattr(audit, "record", record)


# --- finding 1: tokens obtained without a second factor ---------------------------------------


def test_enrolling_a_factor_revokes_the_tokens_obtained_without_one(client):
    """An investigator (no factor required) got a token with the password alone, then enrolled an
    authenticator app: the token, which a stolen password could have got, ends with the enrolment."""
    user = make_user("ivo", [Role.INVESTIGATOR])
    token = _token(user)
    assert _me(token) == 200
    sign_in(client, user)
    _enrol_on_the_pages(client)
    assert _me(token) == 401
    assert not AuthToken.objects.filter(user=user).exists()
    revoked = _events(Action.API_TOKEN_REVOKED, user)
    assert len(revoked) == 1 and revoked[0].details["reason"] == "factor_added"
    assert revoked[0].actor_id == user.pk
    # a token obtained now needs the code, and is kept by later changes that add nothing
    fresh = _token(user, unused_code(user))
    assert _me(fresh) == 200


def test_a_token_made_before_the_role_asked_for_a_factor_does_not_come_back_after_enrolment(client):
    """The remaining gap of "a token made earlier (before the role was given) is refused": it was
    refused only until the user enrolled, then worked again without ever passing a factor."""
    user = make_user("rita", [Role.INVESTIGATOR])
    token = _token(user)
    user_set_roles(actor=None, user=user, roles=[Role.LEGAL_REVIEWER])
    user = User.objects.get(pk=user.pk)
    assert _me(token) == 403  # refused while the factor is missing (what was there already)
    sign_in(client, user)  # the password; taken to enrolment
    _enrol_on_the_pages(client)
    assert _me(token) == 401  # revoked, not back in use


def test_a_staff_enrolment_of_a_factor_revokes_the_tokens_too():
    from accounts.actions import second_factor_enrol_totp

    user = make_user("ines", [Role.INVESTIGATOR])
    token = _token(user)
    second_factor_enrol_totp(actor=None, user=user, secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert _me(token) == 401
    assert _events(Action.API_TOKEN_REVOKED, user)[0].details["reason"] == "factor_added"


def test_removing_a_factor_revokes_every_token(client):
    user = make_user("ivo", [Role.INVESTIGATOR], enrolled=True)
    token = _token(user, unused_code(user))
    assert _me(token) == 200
    sign_in(client, user)
    _confirmed(client)
    totp_factor = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    response = client.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Authenticator.objects.filter(pk=totp_factor.pk).exists()
    assert _me(token) == 401
    assert [event.details["reason"] for event in _events(Action.API_TOKEN_REVOKED, user)] == ["factor_removed"]
    removed = _events(Action.AUTH_FACTOR_REMOVED, user)
    assert [event.details["type"] for event in removed] == ["totp"]


# --- finding 3: the change and its event in one transaction -----------------------------------


def test_a_failing_ledger_write_leaves_no_factor_added(client, monkeypatch):
    user = make_user("ivo", [Role.INVESTIGATOR])
    sign_in(client, user)
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret
    _ledger_refuses(monkeypatch, Action.AUTH_FACTOR_ADDED)
    with pytest.raises(RuntimeError):
        client.post(reverse("mfa_activate_totp"), {"code": totp(secret)})
    assert not Authenticator.objects.filter(user=user).exists()
    assert not factors.has_second_factor(user)


def test_a_failing_ledger_write_leaves_the_factor_in_place(client, monkeypatch):
    user = make_user("ivo", [Role.INVESTIGATOR], enrolled=True)
    sign_in(client, user)
    _confirmed(client)
    before = set(Authenticator.objects.filter(user=user).values_list("pk", flat=True))
    _ledger_refuses(monkeypatch, Action.AUTH_FACTOR_REMOVED)
    with pytest.raises(RuntimeError):
        client.post(reverse("mfa_deactivate_totp"))
    assert set(Authenticator.objects.filter(user=user).values_list("pk", flat=True)) == before


def test_new_recovery_codes_and_their_event_are_one_change(client, monkeypatch):
    user = make_user("ivo", [Role.INVESTIGATOR], enrolled=True)
    sign_in(client, user)
    _confirmed(client)
    # enrolled by the action: no recovery codes yet; make the first ones on the page
    response = client.post(reverse("mfa_generate_recovery_codes"))
    assert response.status_code == 302
    first = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    _ledger_refuses(monkeypatch, Action.AUTH_RECOVERY_CODES_GENERATED)
    with pytest.raises(RuntimeError):
        client.post(reverse("mfa_generate_recovery_codes"))
    assert Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES).pk == first.pk


def test_factor_events_are_written_once_with_the_change(client, django_capture_on_commit_callbacks):
    user = make_user("ivo", [Role.INVESTIGATOR])
    sign_in(client, user)
    with django_capture_on_commit_callbacks(execute=True):
        _enrol_on_the_pages(client)
        _confirmed(client)
        assert client.post(reverse("mfa_generate_recovery_codes")).status_code == 302
    assert [event.details["type"] for event in _events(Action.AUTH_FACTOR_ADDED, user)] == ["totp", "recovery_codes"]
    generated = _events(Action.AUTH_RECOVERY_CODES_GENERATED, user)
    assert len(generated) == 1 and generated[0].details["type"] == "recovery_codes"
    assert not _events(Action.AUTH_FACTOR_REMOVED, user)


# --- finding 2: seeing the recovery codes is recorded -----------------------------------------


def test_viewing_and_downloading_the_recovery_codes_is_recorded(client):
    user = make_user("ivo", [Role.INVESTIGATOR])
    sign_in(client, user)
    _enrol_on_the_pages(client)
    page = client.get(reverse("mfa_view_recovery_codes"))
    assert page.status_code == 200
    download = client.get(reverse("mfa_download_recovery_codes"))
    assert download.status_code == 200
    viewed = _events(Action.AUTH_RECOVERY_CODES_VIEWED, user)
    assert [event.details["how"] for event in viewed] == ["page", "download"]
    assert all(event.actor_id == user.pk for event in viewed)
    codes = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES).wrap().get_unused_codes()
    assert not any(code in str(event.details) for event in viewed for code in codes)


def test_no_codes_shown_is_not_recorded_as_viewed(client):
    user = make_user("ivo", [Role.INVESTIGATOR])
    sign_in(client, user)
    assert client.get(reverse("mfa_view_recovery_codes")).status_code == 404  # none to show
    assert client.get(reverse("mfa_download_recovery_codes")).status_code == 404
    assert not _events(Action.AUTH_RECOVERY_CODES_VIEWED, user)
