"""Step-up with a security key: on every protected page, a user with a key is offered "Use a
security key instead" next to the code field; the key's answer, posted with the same form,
completes the action in that submit (typed input and all) and is recorded as a step-up done
with the key. A stranger's key, a replayed answer or garbage change nothing and are recorded."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.stepup import WRONG_KEY
from audit.events import Action
from audit.models import AuditEvent
from tests.stepup import age_second_factor, stepped_up
from tests.webauthn import HOST, SoftKey, add_key, step_up_answer

from .test_step_up import SCENARIOS, Scenario

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


@pytest.fixture(autouse=True)
def _forget_used_codes():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request, store) -> Scenario:
    return SCENARIOS[request.param](request)


def _stale(scenario: Scenario) -> tuple[Client, SoftKey]:
    """A session of the scenario's actor, who has a key, whose last check is too old."""
    client = Client(HTTP_HOST=HOST)
    key = add_key(scenario.actor)
    stepped_up(client, scenario.actor)
    age_second_factor(client)
    return client, key


def _failures(user) -> list[str]:
    events = AuditEvent.objects.filter(action=Action.AUTH_SECOND_FACTOR_FAILED, actor=user).order_by("seq")
    return [event.details["reason"] for event in events]


def test_the_key_completes_the_action_in_the_same_submit(scenario):
    client, key = _stale(scenario)
    response = client.post(scenario.url, scenario.data)
    page = response.content.decode()
    assert response.status_code == 200 and not scenario.done()
    assert "Use a security key instead" in page and 'name="step_up_credential"' in page
    assert "/static/js/security-key.js" in page and "/static/mfa/js/webauthn-json.js" in page
    if scenario.kept:
        assert scenario.kept in page
    answer = step_up_answer(client, key)
    response = client.post(scenario.url, {**scenario.data, "step_up_code": "", "step_up_credential": answer})
    assert response.status_code == 302, response.content.decode()[:500]
    assert scenario.done()
    passed = AuditEvent.objects.filter(action=Action.AUTH_SECOND_FACTOR_PASSED, actor=scenario.actor).last()
    assert passed.details == {"method": "step_up", "factor": "webauthn"}


def test_a_strangers_key_changes_nothing_and_is_recorded(scenario):
    client, key = _stale(scenario)
    stranger = SoftKey()
    stranger.user_handle = key.user_handle
    response = client.post(scenario.url, {**scenario.data, "step_up_credential": step_up_answer(client, stranger)})
    page = response.content.decode()
    assert response.status_code == 200 and not scenario.done()
    assert WRONG_KEY in page and 'aria-invalid="true"' in page
    if scenario.kept:
        assert scenario.kept in page
    assert _failures(scenario.actor) == ["wrong_key"]


def test_an_answer_is_accepted_once(store, request):
    scenario = SCENARIOS["request_approve"](request)
    client, key = _stale(scenario)
    answer = step_up_answer(client, key)
    assert client.post(scenario.url, {**scenario.data, "step_up_credential": "garbage"}).status_code == 200
    data = {**scenario.data, "step_up_credential": answer}
    assert client.post(scenario.url, data).status_code == 302 and scenario.done()
    # The same answer again, in another session (a copy of the request): refused.
    replay = Client(HTTP_HOST=HOST)
    stepped_up(replay, scenario.actor)
    age_second_factor(replay)
    other = SCENARIOS["case_approve"](request)
    assert replay.post(other.url, {**other.data, "step_up_credential": answer}).status_code == 200
    assert not other.done()
    assert _failures(scenario.actor) == ["wrong_key", "wrong_key"]


def test_no_key_no_key_button(store, request):
    scenario = SCENARIOS["request_approve"](request)
    client = Client(HTTP_HOST=HOST)
    stepped_up(client, scenario.actor)
    age_second_factor(client)
    page = client.post(scenario.url, scenario.data).content.decode()
    assert "step_up_code" in page and "Use a security key" not in page
    # An answer posted anyway by someone without a key is not looked at: the code is still asked.
    response = client.post(scenario.url, {**scenario.data, "step_up_credential": json.dumps({"id": "x"})})
    assert response.status_code == 200 and not scenario.done()
    assert _failures(scenario.actor) == []


def test_the_key_steps_up_an_admin_change_and_an_admin_action(superuser, member):
    """The admin's forms (the code field) and its confirmation page (actions) offer the key too."""
    from django.contrib.auth.models import Group
    from django.urls import reverse
    from knox.models import AuthToken

    from accounts.models import User
    from accounts.roles import Role
    from tests.foundation.test_admin_users import _change_form

    client = Client(HTTP_HOST=HOST)
    key = add_key(superuser)
    stepped_up(client, superuser)
    age_second_factor(client)
    url = reverse("admin:accounts_user_change", args=[member.pk])
    data = _change_form(member, groups=[Group.objects.get(name=Role.AUDITOR).pk], first_name="Typed-Name")
    page = client.post(url, data).content.decode()
    assert "Use a security key instead" in page and 'value="Typed-Name"' in page
    assert client.post(url, {**data, "step_up_credential": step_up_answer(client, key)}).status_code == 302
    assert User.objects.get(pk=member.pk).first_name == "Typed-Name"
    age_second_factor(client)
    token, _ = AuthToken.objects.create(user=member)
    changelist = reverse("admin:knox_authtoken_changelist")
    action = {"action": "revoke_selected", "_selected_action": [token.pk]}
    page = client.post(changelist, action).content.decode()
    assert "Use a security key instead" in page and AuthToken.objects.filter(pk=token.pk).exists()
    response = client.post(changelist, {**action, "step_up_credential": step_up_answer(client, key)})
    assert response.status_code == 302 and not AuthToken.objects.filter(pk=token.pk).exists()
