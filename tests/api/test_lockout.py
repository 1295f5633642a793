"""Lockout at the token endpoint, and the client address it counts: X-Forwarded-For is
believed only as far as CUSTOS_PROXY_COUNT proxies vouch for it."""

from __future__ import annotations

import itertools

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
_spoofed = (f"203.0.113.{number}" for number in itertools.count(1))


def _token(username: str, password: str, **headers):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json", **headers)


def _rotating(username: str, password: str):
    """One attempt with a forwarded-for header that no other attempt used."""
    return _token(username, password, HTTP_X_FORWARDED_FOR=next(_spoofed))


def test_lockout_holds_with_rotating_x_forwarded_for(lead, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _rotating("lead", "wrong password")
    response = _rotating("lead", PASSWORD)
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "locked_out"
    assert not AuthToken.objects.exists()


def test_locked_out_answer_is_the_same_for_a_user_that_does_not_exist(lead, settings):
    answers = {}
    for username in ("lead", "nobody"):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _token(username, "wrong password", REMOTE_ADDR="198.51.100.7" if username == "lead" else "198.51.100.8")
        response = _token(username, PASSWORD, REMOTE_ADDR="192.0.2.99")  # a fresh address: the username is locked
        answers[username] = (response.status_code, response.json())
    assert answers["lead"] == answers["nobody"]
    assert answers["lead"][0] == 429


def test_one_address_is_locked_after_failures_against_many_usernames(lead, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        _rotating(f"guess{number}", "wrong password")
    assert _rotating("lead", PASSWORD).status_code == 429
    # Another client (another REMOTE_ADDR) is not affected.
    assert _token("lead", PASSWORD, REMOTE_ADDR="192.0.2.50").status_code == 201


def test_behind_one_proxy_the_address_the_proxy_saw_is_the_one_locked(lead, other_investigator, settings):
    settings.CUSTOS_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for number in range(settings.AXES_FAILURE_LIMIT):
        # The client's own claim (left) changes every time; the proxy's entry (right) does not.
        _token(f"guess{number}", "wrong", HTTP_X_FORWARDED_FOR=f"{next(_spoofed)}, 198.51.100.20", **proxy)
    locked = _token("lead", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.20", **proxy)
    assert locked.status_code == 429
    other_client = _token("other_investigator", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.21", **proxy)
    assert other_client.status_code == 201
    event = AuditEvent.objects.filter(action=Action.AUTH_LOCKED_OUT).get()
    assert event.ip == "198.51.100.20" and event.details["address"] == "198.51.100.20"


def test_token_throttle_counts_the_client_address_not_the_forwarded_header(lead, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth_token": "3/minute"})
    codes = [_rotating("lead", PASSWORD).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]


def test_token_throttle_behind_a_proxy_counts_each_client(lead, monkeypatch, settings):
    settings.CUSTOS_PROXY_COUNT = 1
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth_token": "2/minute"})
    first = [_token("lead", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.30").status_code for _ in range(3)]
    second = _token("lead", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.31").status_code
    assert first == [201, 201, 429] and second == 201
