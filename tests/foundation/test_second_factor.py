"""Second factors (django-allauth MFA): TOTP enrolment on the pages, the code asked for at
sign-in after the password, recovery codes, the pause after wrong codes, and the
``accounts.factors`` calls that step-up and single sign-on use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts import factors
from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from custos_testing.totp import fresh_code, totp
from tests.conftest import PASSWORD, make_user, persona_secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer(db):
    """A legal reviewer who has not set up a second factor yet."""
    return make_user("newcomer", [Role.LEGAL_REVIEWER], enrolled=False)


LOGIN = "/accounts/login/"


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _password(client: Client, username: str, password: str = PASSWORD):
    return client.post(LOGIN, {"login": username, "password": password})


def _enrol(client: Client, username: str) -> str:
    """Sign in with the password, set up an authenticator app on the pages; the secret."""
    assert _password(client, username).status_code == 302
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    response = client.post(reverse("mfa_activate_totp"), {"code": totp(secret)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return secret


def _recovery_codes(user) -> list[str]:
    return RecoveryCodes(
        Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    ).get_unused_codes()


def _events(action: Action, user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("seq"))


def test_enrolment_on_the_pages_is_recorded_and_makes_recovery_codes(
    client, newcomer, django_capture_on_commit_callbacks
):
    assert not factors.has_second_factor(newcomer)
    with django_capture_on_commit_callbacks(execute=True):  # allauth reports it after its commit
        _enrol(client, "newcomer")
    assert factors.has_second_factor(newcomer)
    assert Authenticator.objects.filter(user=newcomer, type=Authenticator.Type.RECOVERY_CODES).exists()
    added = _events(Action.AUTH_FACTOR_ADDED, newcomer)
    assert [event.details["type"] for event in added] == ["totp", "recovery_codes"]
    assert added[0].actor_id == newcomer.pk


def test_a_wrong_code_at_enrolment_enrols_nothing(client, newcomer):
    _password(client, "newcomer")
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    wrong = f"{(int(totp(secret)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("mfa_activate_totp"), {"code": wrong})
    assert response.status_code == 200 and "field-error" in response.content.decode()
    assert not factors.has_second_factor(newcomer)


def test_after_enrolment_the_password_alone_does_not_sign_in(newcomer):
    secret = _enrol(Client(), "newcomer")
    client = Client()
    response = _password(client, "newcomer")
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert not _signed_in(client)
    # A session that passed the password but not the code reaches nothing.
    assert client.get(reverse("home")).status_code == 302
    assert client.get("/api/v1/me/").status_code in (401, 403)
    assert not _events(Action.AUTH_LOGIN, newcomer)[1:]  # only the enrolment's sign-in
    response = client.post(reverse("mfa_authenticate"), {"code": fresh_code(secret)})
    assert response.status_code == 302 and _signed_in(client)
    assert client.get(reverse("home")).status_code == 200
    passed = _events(Action.AUTH_SECOND_FACTOR_PASSED, newcomer)
    assert passed[-1].details == {"method": "totp"}


def test_a_wrong_code_is_refused_and_recorded(newcomer):
    secret = _enrol(Client(), "newcomer")
    client = Client()
    _password(client, "newcomer")
    wrong = f"{(int(totp(secret)) + 500_000) % 1_000_000:06d}"
    response = client.post(reverse("mfa_authenticate"), {"code": wrong})
    assert response.status_code == 200 and not _signed_in(client)
    failed = _events(Action.AUTH_SECOND_FACTOR_FAILED, newcomer)
    assert len(failed) == 1 and failed[0].details == {"reason": "wrong_code", "failures": 1}
    assert wrong not in str(failed[0].details)


def test_a_code_is_accepted_once(newcomer):
    secret = _enrol(Client(), "newcomer")
    code = fresh_code(secret)
    first, second = Client(), Client()
    _password(first, "newcomer")
    _password(second, "newcomer")
    assert first.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302 and _signed_in(first)
    assert second.post(reverse("mfa_authenticate"), {"code": code}).status_code == 200 and not _signed_in(second)


def test_too_many_wrong_codes_pause_even_the_right_one(newcomer, settings):
    secret = _enrol(Client(), "newcomer")
    client = Client()
    _password(client, "newcomer")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("mfa_authenticate"), {"code": "000000"})
    response = client.post(reverse("mfa_authenticate"), {"code": fresh_code(secret)})
    assert response.status_code == 200 and not _signed_in(client)
    assert "Too many wrong codes" in response.content.decode()
    assert _events(Action.AUTH_SECOND_FACTOR_FAILED, newcomer)[-1].details["reason"] == "paused"
    assert factors.second_factor_paused(newcomer)
    # The pause ends when the failures are older than the cool-off (the ledger is append-only:
    # shorten the cool-off instead of ageing the events).
    settings.AXES_COOLOFF_TIME = timedelta(microseconds=1)
    assert not factors.second_factor_paused(newcomer)


def test_a_recovery_code_signs_in_once(newcomer):
    _enrol(Client(), "newcomer")
    code = RecoveryCodes(
        Authenticator.objects.get(user=newcomer, type=Authenticator.Type.RECOVERY_CODES)
    ).get_unused_codes()[0]
    client = Client()
    _password(client, "newcomer")
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302 and _signed_in(client)
    assert _events(Action.AUTH_SECOND_FACTOR_PASSED, newcomer)[-1].details == {"method": "recovery_codes"}
    again = Client()
    _password(again, "newcomer")
    assert again.post(reverse("mfa_authenticate"), {"code": code}).status_code == 200 and not _signed_in(again)


def test_check_second_factor_for_step_up(newcomer, lead):
    secret = _enrol(Client(), "newcomer")
    code = _recovery_codes(newcomer)[0]
    assert factors.check_second_factor(newcomer, fresh_code(secret))
    assert factors.check_second_factor(newcomer, code)
    assert not factors.check_second_factor(newcomer, code)  # used up
    assert not factors.check_second_factor(newcomer, "")
    assert not factors.check_second_factor(lead, "123456")  # no factor at all
    assert [event.details["reason"] for event in _events(Action.AUTH_SECOND_FACTOR_FAILED, newcomer)] == [
        "wrong_code",
        "wrong_code",
    ]


def test_a_deactivated_user_passes_no_second_factor(newcomer):
    secret = _enrol(Client(), "newcomer")
    newcomer.is_active = False
    newcomer.save(update_fields=["is_active"])
    assert not factors.check_second_factor(newcomer, fresh_code(secret))
    client = Client()
    response = _password(client, "newcomer")
    assert response.status_code == 200 and not _signed_in(client)  # the same answer as a wrong password


def test_second_factor_at_follows_this_session(newcomer):
    secret = _enrol(Client(), "newcomer")
    client = Client()
    _password(client, "newcomer")
    client.post(reverse("mfa_authenticate"), {"code": fresh_code(secret)})
    request = RequestFactory().get("/")
    request.session = client.session
    request.user = newcomer
    at = factors.second_factor_at(request)
    assert at is not None and timezone.now() - at < timedelta(minutes=1)
    assert factors.second_factor_within(request, timedelta(minutes=1))
    # Another session of the same user, which passed only the password, has checked nothing.
    other = Client()
    _password(other, "newcomer")
    request.session = other.session
    assert factors.second_factor_at(request) is None


# --- required for some roles: enrolment before anything else -------------------------------


def test_a_role_that_needs_a_second_factor_is_taken_to_enrolment_and_nothing_else(newcomer):
    client = Client()
    response = _password(client, "newcomer")
    assert _signed_in(client)
    for url in (response["Location"], reverse("home"), "/cases/", "/review/", "/audit/events/", "/admin/"):
        page = client.get(url)
        assert page.status_code == 302 and page["Location"] == reverse("mfa_index"), url
    assert "needs a second factor" in client.get(reverse("mfa_index")).content.decode()
    api = client.get("/api/v1/cases/")
    assert api.status_code == 403 and api.json()["code"] == "second_factor_required"
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    assert client.post(reverse("mfa_activate_totp"), {"code": totp(secret)}).status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert client.get("/api/v1/cases/").status_code == 200


def test_the_api_refuses_a_token_to_a_role_that_must_enrol_first(newcomer):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    response = APIClient().post("/api/v1/auth/token/", {"username": "newcomer", "password": PASSWORD}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "second_factor_required"
    assert not AuthToken.objects.filter(user=newcomer).exists()
    # A token made before the requirement (or before the role was given) is refused too.
    _, token = AuthToken.objects.create(user=newcomer)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    refused = api.get("/api/v1/me/")
    assert refused.status_code == 403 and refused.json()["code"] == "second_factor_required"


def test_roles_not_listed_need_no_second_factor_until_the_setting_lists_them(lead, settings):
    client = Client()
    _password(client, "lead")
    assert client.get(reverse("home")).status_code == 200
    settings.CUSTOS_MFA_REQUIRED_ROLES = [*settings.CUSTOS_MFA_REQUIRED_ROLES, "investigator"]
    assert client.get(reverse("home"))["Location"] == reverse("mfa_index")


def test_staff_need_a_second_factor(db):
    staff = make_user("newstaff", [], is_staff=True, enrolled=False)
    assert factors.enrolment_missing(staff)
    client = Client()
    _password(client, "newstaff")
    assert client.get("/admin/")["Location"] == reverse("mfa_index")


def test_the_last_factor_of_a_role_that_needs_one_cannot_be_removed(reviewer):
    client = Client()
    _password(client, "reviewer")
    client.post(reverse("mfa_authenticate"), {"code": fresh_code(persona_secret("reviewer"))})
    response = client.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_reauthenticate"))
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})  # allauth asks again first
    response = client.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 200 and "add another one" in response.content.decode()
    assert factors.has_second_factor(reviewer)


def test_the_login_fixture_passes_the_second_factor(login, reviewer):
    client = login(reviewer)
    assert client.get(reverse("home")).status_code == 200
    assert _events(Action.AUTH_SECOND_FACTOR_PASSED, reviewer)
