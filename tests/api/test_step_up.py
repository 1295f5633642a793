"""Step-up in the API: a token records whether it was obtained with a second factor and when;
``POST /api/v1/auth/step-up/`` steps an existing token (or a browser session) up. The insider's
attacks: a token without a code, a replayed code, another user's code, guessing."""

from __future__ import annotations

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import TokenSecondFactor
from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from investigations.models import RequestStatus
from tests.conftest import PASSWORD, make_user
from tests.stepup import (
    age_second_factor,
    check_second_factor_now,
    enrol,
    secret_of,
    totp_code,
    unused_code,
    wrong_code,
)

from .conftest import obtain_token, token_client

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

OTHER_SECRET = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"


def _token(user, otp: str | None) -> object:
    body = {"username": user.username, "password": PASSWORD}
    if otp is not None:
        body["otp"] = otp
    return APIClient().post("/api/v1/auth/token/", body, format="json")


def _decide(client, data_request):
    return client.post(
        f"/api/v1/requests/{data_request.pk}/decisions/",
        {"decision": "approve", "reason": "Proportionate."},
        format="json",
    )


def test_a_token_with_a_code_records_when(second_reviewer):
    body = obtain_token(second_reviewer)
    assert body["second_factor_at"] is not None
    token = AuthToken.objects.get(user=second_reviewer)
    assert TokenSecondFactor.checked_at_for(token) is not None
    passed = AuditEvent.objects.get(action=Action.AUTH_SECOND_FACTOR_PASSED, actor=second_reviewer)
    assert passed.details == {"method": "token", "token_key": token.token_key}


def test_a_user_with_a_second_factor_gets_no_token_with_the_password_alone(second_reviewer, reviewer):
    """Signing in through the API is signing in: the password alone opens nothing for a user with
    a second factor, as on the login page."""
    for user in (second_reviewer, reviewer):
        response = APIClient().post(
            "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json"
        )
        assert response.status_code == 401 and response.json()["code"] == "otp_required"
    assert not AuthToken.objects.exists() and not TokenSecondFactor.objects.exists()


def test_a_wrong_code_gets_no_token_and_is_recorded(second_reviewer):
    response = _token(second_reviewer, wrong_code(second_reviewer))
    assert response.status_code == 401 and response.json()["code"] == "otp_invalid"
    assert not AuthToken.objects.filter(user=second_reviewer).exists()
    assert AuditEvent.objects.filter(action=Action.AUTH_SECOND_FACTOR_FAILED, actor=second_reviewer).count() == 1


def test_a_code_for_a_user_without_a_factor_is_a_field_error(lead):
    response = _token(lead, "123456")
    assert response.status_code == 400 and "otp" in response.json()
    assert not AuthToken.objects.filter(user=lead).exists()


def test_a_token_without_otp_cannot_decide_and_steps_up_with_a_code(submitted_request, second_reviewer):
    client = token_client(second_reviewer, otp="")
    response = _decide(client, submitted_request)
    assert response.status_code == 403 and response.json()["code"] == "step_up_required"
    assert "/api/v1/auth/step-up/" in response.json()["detail"]
    submitted_request.refresh_from_db()
    assert submitted_request.status == RequestStatus.SUBMITTED

    stepped = client.post("/api/v1/auth/step-up/", {"otp": unused_code(second_reviewer)}, format="json")
    assert stepped.status_code == 200, stepped.content
    assert set(stepped.json()) == {"second_factor_at", "step_up_until"}
    assert _decide(client, submitted_request).status_code == 201


def test_lifting_a_legal_hold_needs_a_token_with_a_recent_code_placing_one_does_not(open_case, reviewer):
    client = token_client(reviewer, otp="")
    url = f"/api/v1/cases/{open_case.pk}/legal-hold/"
    assert client.post(url, {"hold": True, "reason": "Litigation expected."}, format="json").status_code == 200
    response = client.post(url, {"hold": False, "reason": "Settled."}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "step_up_required"
    open_case.refresh_from_db()
    assert open_case.legal_hold and open_case.legal_hold_lift_by is None
    assert client.post("/api/v1/auth/step-up/", {"otp": unused_code(reviewer)}, format="json").status_code == 200
    response = client.post(url, {"hold": False, "reason": "Settled."}, format="json")
    assert response.status_code == 200 and response.json()["lift_proposed_by"]["username"] == reviewer.username


def test_a_user_without_a_factor_is_told_to_enrol(active_grant, lead):
    response = token_client(lead).post(f"/api/v1/grants/{active_grant.pk}/revoke/", {"reason": "Stop."}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "step_up_required"
    assert "enrol" in response.json()["detail"]
    refused = token_client(lead).post("/api/v1/auth/step-up/", {"otp": "123456"}, format="json")
    assert refused.status_code == 400 and "otp" in refused.json()


def test_the_same_code_is_refused_the_second_time(second_reviewer):
    """Replaying a code within its 30 seconds (seen over a shoulder, or from a proxy log)."""
    code = unused_code(second_reviewer)
    first, second = token_client(second_reviewer, otp=""), token_client(second_reviewer, otp="")
    assert first.post("/api/v1/auth/step-up/", {"otp": code}, format="json").status_code == 200
    replay = second.post("/api/v1/auth/step-up/", {"otp": code}, format="json")
    assert replay.status_code == 401 and replay.json()["code"] == "otp_invalid"
    assert _token(second_reviewer, code).status_code == 401


def test_a_code_from_another_users_authenticator_is_refused(submitted_request, second_reviewer):
    accomplice = make_user("accomplice", [Role.INVESTIGATOR])
    other = enrol(accomplice, OTHER_SECRET)
    client = token_client(second_reviewer, otp="")
    response = client.post("/api/v1/auth/step-up/", {"otp": totp_code(other)}, format="json")
    assert response.status_code == 401
    assert _decide(client, submitted_request).status_code == 403
    assert totp_code(other) != totp_code(secret_of(second_reviewer))


def test_guessing_codes_pauses_them_all(second_reviewer):
    """A stolen token, no phone: after the lockout's limit even the right code is refused."""
    client = token_client(second_reviewer, otp="")
    for guess in ("000000", "123456", "111111", "999999", "424242"):
        client.post("/api/v1/auth/step-up/", {"otp": guess}, format="json")
    assert client.post("/api/v1/auth/step-up/", {"otp": unused_code(second_reviewer)}, format="json").status_code == 401
    assert not TokenSecondFactor.objects.exists()


def test_one_tokens_step_up_does_not_step_up_another(submitted_request, second_reviewer):
    stepped, other = token_client(second_reviewer), token_client(second_reviewer, otp="")
    assert _decide(other, submitted_request).status_code == 403
    assert _decide(stepped, submitted_request).status_code == 201


def test_a_browser_session_on_the_api_uses_the_sessions_check(submitted_request, second_reviewer, client):
    client.force_login(second_reviewer)
    check_second_factor_now(client, second_reviewer)
    age_second_factor(client)
    url = f"/api/v1/requests/{submitted_request.pk}/decisions/"
    body = {"decision": "return", "reason": "Say which report."}
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "step_up_required"
    code = {"otp": unused_code(second_reviewer)}
    stepped = client.post("/api/v1/auth/step-up/", code, content_type="application/json")
    assert stepped.status_code == 200
    assert client.post(url, body, content_type="application/json").status_code == 201


def test_the_schema_documents_the_refusal_and_the_step_up():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    decide = schema["paths"]["/api/v1/requests/{id}/decisions/"]["post"]["responses"]["403"]
    assert "step_up_required" in decide["description"]
    hold = schema["paths"]["/api/v1/cases/{id}/hold/"]["post"]["responses"]["403"]
    assert "step_up_required" not in hold["description"]
    assert "/api/v1/auth/step-up/" in schema["paths"]
    token_body = schema["components"]["schemas"]["CredentialsRequest"]["properties"]
    assert "otp" in token_body
