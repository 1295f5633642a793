"""Security keys and passkeys (WebAuthn) as a second factor: added on the pages (and recorded),
they open the roles that need a second factor, stand in for the code at sign-in after the
password, are refused when they are not the user's or answer another challenge, pause with the
codes after too many failures, and the last factor of such a role cannot be removed. A software
key (``tests.webauthn``) plays the browser's part; the browser journey uses Chromium's."""

from __future__ import annotations

import json

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts import factors
from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD, make_user
from tests.webauthn import HOST, SoftKey, add_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_used_codes():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def newcomer(db):
    """A legal reviewer who has not set up a second factor yet."""
    return make_user("newcomer", [Role.LEGAL_REVIEWER], enrolled=False)


def _client() -> Client:
    return Client(HTTP_HOST=HOST)  # WebAuthn's origin: https, or http://localhost


def _events(action: Action, user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("seq"))


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _password(client: Client, username: str):
    return client.post(reverse("account_login"), {"login": username, "password": PASSWORD})


def _add_key_on_the_page(client: Client) -> SoftKey:
    """The "Add a security key" page: the browser's key answers its challenge, the form is sent."""
    page = client.get(reverse("mfa_add_webauthn"))
    assert page.status_code == 200, page.content.decode()[:500]
    key = SoftKey()
    credential = key.create(page.context["js_data"]["creation_options"])
    response = client.post(reverse("mfa_add_webauthn"), {"name": "Blue key", "credential": json.dumps(credential)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return key


def _key_at_sign_in(client: Client, key: SoftKey, **kwargs):
    page = client.get(reverse("mfa_authenticate"))
    assert page.status_code == 200
    answer = key.get(page.context["js_data"]["request_options"], **kwargs)
    return client.post(reverse("mfa_authenticate"), {"credential": json.dumps(answer)})


def test_a_key_added_on_the_pages_is_recorded_and_opens_a_role_that_needs_a_second_factor(
    newcomer, django_capture_on_commit_callbacks
):
    client = _client()
    _password(client, "newcomer")
    assert client.get(reverse("home"))["Location"] == reverse("mfa_index")  # the enrolment gate
    index = client.get(reverse("mfa_index")).content.decode()
    assert "Add a security key or passkey" in index
    with django_capture_on_commit_callbacks(execute=True):  # allauth reports it after its commit
        _add_key_on_the_page(client)
    assert factors.has_second_factor(newcomer) and not factors.enrolment_missing(newcomer)
    assert client.get(reverse("home")).status_code == 200
    added = _events(Action.AUTH_FACTOR_ADDED, newcomer)
    assert [event.details["type"] for event in added] == ["webauthn", "recovery_codes"]
    assert added[0].actor_id == newcomer.pk
    assert Authenticator.objects.get(user=newcomer, type="webauthn").wrap().name == "Blue key"


def test_a_refused_key_at_enrolment_adds_nothing(newcomer):
    client = _client()
    _password(client, "newcomer")
    page = client.get(reverse("mfa_add_webauthn"))
    options = page.context["js_data"]["creation_options"]
    credential = SoftKey(rp_id="elsewhere.example").create(options)  # made for another site
    response = client.post(reverse("mfa_add_webauthn"), {"name": "Phished", "credential": json.dumps(credential)})
    assert response.status_code == 200 and "The key was not added" in response.content.decode()
    assert not factors.has_second_factor(newcomer)
    assert not _events(Action.AUTH_FACTOR_ADDED, newcomer)


def test_the_key_stands_in_for_the_code_at_sign_in(newcomer):
    enrolling = _client()
    _password(enrolling, "newcomer")
    key = _add_key_on_the_page(enrolling)
    client = _client()
    response = _password(client, "newcomer")
    assert response["Location"] == reverse("mfa_authenticate") and not _signed_in(client)
    page = client.get(reverse("mfa_authenticate")).content.decode()
    assert "Use a security key" in page and "mfa/js/webauthn.js" in page
    response = _key_at_sign_in(client, key)
    assert response.status_code == 302 and _signed_in(client)
    assert client.get(reverse("home")).status_code == 200
    assert _events(Action.AUTH_SECOND_FACTOR_PASSED, newcomer)[-1].details == {"method": "webauthn"}
    assert len(_events(Action.AUTH_LOGIN, newcomer)) == 2  # the enrolment's sign-in, then this one


def test_a_key_of_someone_else_or_an_answer_to_another_challenge_is_refused_and_recorded(newcomer):
    key = add_key(newcomer)
    stranger = SoftKey()
    stranger.user_handle = key.user_handle
    for attempt in ({"key": stranger}, {"key": key, "challenge": "c3RhbGUtY2hhbGxlbmdl"}):
        client = _client()
        _password(client, "newcomer")
        response = _key_at_sign_in(client, attempt.pop("key"), **attempt)
        assert response.status_code == 200 and not _signed_in(client)
        assert "That security key was not accepted" in response.content.decode()
    failed = _events(Action.AUTH_SECOND_FACTOR_FAILED, newcomer)
    assert [event.details["reason"] for event in failed] == ["wrong_key", "wrong_key"]
    assert not _events(Action.AUTH_SECOND_FACTOR_PASSED, newcomer)


def test_a_garbled_answer_is_refused_not_an_error(newcomer):
    add_key(newcomer)
    client = _client()
    _password(client, "newcomer")
    client.get(reverse("mfa_authenticate"))
    for garbage in ('{"id": 1}', "[]", '{"response": {"clientDataJSON": "!!"}}', "not json"):
        response = client.post(reverse("mfa_authenticate"), {"credential": garbage})
        assert response.status_code == 200 and not _signed_in(client)


def test_too_many_failures_pause_the_key_too(newcomer, settings):
    key = add_key(newcomer)
    client = _client()
    _password(client, "newcomer")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _key_at_sign_in(client, SoftKey())
    response = _key_at_sign_in(client, key)
    assert response.status_code == 200 and not _signed_in(client)
    assert "Too many wrong codes" in response.content.decode()
    assert _events(Action.AUTH_SECOND_FACTOR_FAILED, newcomer)[-1].details["reason"] == "paused"


def test_a_deactivated_user_passes_no_key(newcomer):
    key = add_key(newcomer)
    client = _client()
    _password(client, "newcomer")
    page = client.get(reverse("mfa_authenticate"))
    answer = key.get(page.context["js_data"]["request_options"])
    newcomer.is_active = False
    newcomer.save(update_fields=["is_active"])
    client.post(reverse("mfa_authenticate"), {"credential": json.dumps(answer)})
    assert not _signed_in(client)


def test_the_last_key_of_a_role_that_needs_one_cannot_be_removed(newcomer, django_capture_on_commit_callbacks):
    client = _client()
    _password(client, "newcomer")
    _add_key_on_the_page(client)
    authenticator = Authenticator.objects.get(user=newcomer, type="webauthn")
    remove = reverse("mfa_remove_webauthn", args=[authenticator.pk])
    assert client.get(remove).status_code == 200
    response = client.post(remove)
    assert response.status_code == 200 and "add another one" in response.content.decode()
    assert Authenticator.objects.filter(pk=authenticator.pk).exists()
    assert not _events(Action.AUTH_FACTOR_REMOVED, newcomer)
    # With an authenticator app as well, the key can go (and its removal is recorded).
    from tests.stepup import enrol

    enrol(newcomer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(remove)
    assert response.status_code == 302
    assert not Authenticator.objects.filter(pk=authenticator.pk).exists()
    removed = _events(Action.AUTH_FACTOR_REMOVED, newcomer)
    assert [event.details["type"] for event in removed] == ["webauthn"]


def test_the_last_authenticator_app_can_go_when_a_key_remains(reviewer):
    """A key counts as the second factor a role needs: the app is no longer the last one."""
    add_key(reviewer)
    client = _client()
    _password(client, "reviewer")
    from tests.stepup import unused_code

    client.post(reverse("mfa_authenticate"), {"code": unused_code(reviewer)})
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    response = client.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=reviewer, type="totp").exists()
    assert factors.has_second_factor(reviewer) and not factors.enrolment_missing(reviewer)


def test_confirm_it_is_you_with_the_key_before_changing_factors(reviewer):
    key = add_key(reviewer)
    client = _client()
    _password(client, "reviewer")
    _key_at_sign_in(client, key)
    client.session  # noqa: B018  (the sign-in is over; allauth now asks again before changes)
    response = client.get(reverse("mfa_add_webauthn"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_reauthenticate"))
    page = client.get(reverse("mfa_reauthenticate_webauthn") + "?next=" + reverse("mfa_add_webauthn"))
    assert page.status_code == 200
    # A stranger's key: the page again, with the error, recorded.
    wrong = SoftKey()
    wrong.user_handle = key.user_handle
    answer = wrong.get(page.context["js_data"]["request_options"])
    response = client.post(reverse("mfa_reauthenticate_webauthn"), {"credential": json.dumps(answer)})
    assert response.status_code == 200 and "That security key was not accepted" in response.content.decode()
    assert _events(Action.AUTH_SECOND_FACTOR_FAILED, reviewer)[-1].details["reason"] == "wrong_key"
    # The right one: recorded, and the change opens.
    page = client.get(reverse("mfa_reauthenticate_webauthn"))
    answer = key.get(page.context["js_data"]["request_options"])
    response = client.post(
        reverse("mfa_reauthenticate_webauthn"), {"credential": json.dumps(answer), "next": reverse("mfa_add_webauthn")}
    )
    assert response.status_code == 302
    assert _events(Action.AUTH_SECOND_FACTOR_PASSED, reviewer)[-1].details == {"method": "webauthn"}
    assert client.get(reverse("mfa_add_webauthn")).status_code == 200


def test_the_step_up_challenge_is_for_users_with_a_key(reviewer, lead):
    add_key(reviewer)
    client = _client()
    client.force_login(reviewer)
    options = client.get(reverse("accounts:step_up_key")).json()["request_options"]["publicKey"]
    assert options["rpId"] == HOST and len(options["allowCredentials"]) == 1
    client.force_login(lead)
    assert client.get(reverse("accounts:step_up_key")).status_code == 404
    assert client.post(reverse("accounts:step_up_key")).status_code == 405


def test_passkey_sign_in_without_the_password_is_off(newcomer):
    """A key is a second factor after the password, never the whole sign-in: allauth's passkey
    login would pass by django-axes's lockout and CUSTOS_LOCAL_LOGIN."""
    from django.urls import NoReverseMatch

    with pytest.raises(NoReverseMatch):
        reverse("mfa_login_webauthn")
    add_key(newcomer)
    assert "passkey" not in _client().get(reverse("account_login")).content.decode().lower()


def test_other_users_keys_are_not_theirs_to_manage(newcomer, reviewer):
    add_key(newcomer)
    authenticator = Authenticator.objects.get(user=newcomer, type="webauthn")
    client = _client()
    client.force_login(reviewer)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert client.post(reverse("mfa_remove_webauthn", args=[authenticator.pk])).status_code == 404
    assert client.post(reverse("mfa_edit_webauthn", args=[authenticator.pk]), {"name": "Mine"}).status_code == 404
    assert Authenticator.objects.filter(pk=authenticator.pk).exists()


def test_confirm_it_is_you_with_a_code_opens_the_change(reviewer):
    """The authenticator app's code on "confirm it is you" counts as allauth's reauthentication
    (it was recorded without allauth's mark, so the page asked again and again)."""
    from tests.stepup import unused_code

    client = _client()
    _password(client, "reviewer")
    client.post(reverse("mfa_authenticate"), {"code": unused_code(reviewer)})
    assert client.get(reverse("mfa_add_webauthn")).status_code == 302
    response = client.post(reverse("mfa_reauthenticate"), {"code": unused_code(reviewer)})
    assert response.status_code == 302
    assert client.get(reverse("mfa_add_webauthn")).status_code == 200
