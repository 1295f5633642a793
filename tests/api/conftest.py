"""API fixtures: a token client per persona (real knox tokens, sent as ``Authorization: Token``),
obtained the real way: ``POST /api/v1/auth/token/`` with the persona's password and, for a
persona with a second factor (reviewers, auditors, staff), a code from it, so that the token may
act on the endpoints that need a recent second-factor check.

The investigation fixtures (cases, requests, grants, the user-data store) are shared with the
page tests, so the API is tested on exactly the objects the pages are.
"""

from __future__ import annotations

import itertools

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.factors import has_second_factor
from accounts.models import User
from tests.conftest import PASSWORD
from tests.stepup import unused_code


@pytest.fixture(autouse=True)
def api_settings(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"


_addresses = (f"198.51.100.{n}" for n in itertools.cycle(range(1, 255)))


def obtain_token(user, *, otp: str | None = None) -> dict:
    """``POST /api/v1/auth/token/`` as ``user`` (each from its own address: the endpoint is throttled
    per address). ``otp``: a code to send, by default an unused one of the user's factor."""
    body = {"username": user.username, "password": PASSWORD}
    if otp is None and has_second_factor(user):
        otp = unused_code(user)
    if otp:
        body["otp"] = otp
    response = APIClient().post("/api/v1/auth/token/", body, format="json", REMOTE_ADDR=next(_addresses))
    assert response.status_code == 201, response.content
    return response.json()


def token_client(user, *, otp: str | None = None) -> APIClient:
    """A client holding a fresh token of ``user``, obtained as a caller would (``obtain_token``).

    An inactive user cannot obtain one: theirs is made directly, as one issued before they were
    deactivated (it must answer 401 all the same). ``otp=""`` for a user with a second factor:
    a token that never passed it (issued before they enrolled), made directly, since the
    endpoint refuses them a token without the code."""
    if otp == "" and has_second_factor(user):
        _, token = AuthToken.objects.create(user=user)
    elif User.objects.filter(pk=user.pk, is_active=True).exists():
        token = obtain_token(user, otp=otp)["token"]
    else:
        _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def api():
    """``api(user)`` is a token client for that persona; ``api(None)`` an anonymous one."""

    def _client(user=None) -> APIClient:
        return token_client(user) if user is not None else APIClient()

    return _client
