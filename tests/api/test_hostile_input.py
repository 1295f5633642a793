"""Hostile input never reaches a 500: deeply nested JSON, integers too large for the database,
NUL bytes and impossible dates, on every operation of the served schema (issue 16, section 7).

Each answers 4xx with the documented error body: ``{"field": ["message", ...]}`` for 400,
``{"detail": ..., "code": ...}`` for the others. Runs on both databases (SQLite and
PostgreSQL differ exactly here: integer range and NUL in text).
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from .conftest import token_client
from .test_schemathesis import _generated_schema

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

DEEP = 100_000  # far past Python's recursion limit
SHALLOW_BUT_DEEP = 900  # under the parser's limit: the nesting reaches the serializers
HUGE_IDS = [str(2**63), "9" * 30, str(-(2**63) - 1)]
HOSTILE_VALUES = [str(2**63), "a\x00b", "2024-13-45", "1e400"]


def _operations(methods: set[str]) -> list[tuple[str, str]]:
    paths = _generated_schema()["paths"]
    return sorted(
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method.upper() in methods and "logout" not in path
    )


def _concrete(path: str, value: str) -> str:
    """The path with every ``{parameter}`` set to ``value``."""
    parts = path.split("/")
    return "/".join(value if part.startswith("{") and part.endswith("}") else part for part in parts)


def _assert_not_a_server_error(response) -> None:
    """A success, or a 4xx with the documented body."""
    if response.status_code >= 400:
        _assert_documented_error(response)
    else:
        assert response.status_code < 300, response.status_code


def _assert_documented_error(response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    body = response.json()
    if response.status_code == 400:
        assert isinstance(body, dict) and body
        assert all(
            isinstance(messages, list) and all(isinstance(m, str) for m in messages) for messages in body.values()
        )
    else:
        assert isinstance(body.get("detail"), str) and isinstance(body.get("code"), str), body


def _raw(client: APIClient, method: str, path: str, body: str):
    return getattr(client, method.lower())(path, body, content_type="application/json")


@pytest.mark.parametrize(("method", "path"), _operations({"POST", "PATCH", "PUT"}))
def test_deeply_nested_json_is_a_400_everywhere(method, path, lead, open_case, active_grant, draft_request):
    client = token_client(lead)
    target = _concrete(
        path, str(draft_request.pk if "requests" in path else active_grant.pk if "grants" in path else open_case.pk)
    )
    for depth in (DEEP, SHALLOW_BUT_DEEP):
        # An operation without a body ignores it; one with a body refuses it.
        _assert_not_a_server_error(_raw(client, method, target, "[" * depth + "]" * depth))
        nested = '{"subjects": ' + "[" * depth + "]" * depth + ', "reason": ' + "[" * depth + "]" * depth + "}"
        _assert_not_a_server_error(_raw(client, method, target, nested))


@pytest.mark.parametrize(
    ("method", "path"), [op for op in _operations({"GET", "POST", "PATCH", "DELETE"}) if "{" in op[1]]
)
@pytest.mark.parametrize("value", HUGE_IDS)
def test_ids_too_large_for_the_database_are_404(method, path, value, lead, auditor):
    for user in (lead, auditor):
        response = getattr(token_client(user), method.lower())(_concrete(path, value), {}, format="json")
        assert response.status_code in (404, 405), (response.status_code, response.content[:300])


@pytest.mark.parametrize("path", [path for method, path in _operations({"GET"}) if "{" not in path])
@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_filters_and_page_numbers_are_answered_without_a_500(path, value, lead, auditor, active_grant):
    names = ["page", "cursor", "status", "case", "q", "tag", "priority", "action", "actor", "case_reference",
             "since", "until", "from", "to", "after", "before", "occurred_after", "occurred_before", "target_id"]  # fmt: skip  # noqa: E501
    for user in (lead, auditor):
        client = token_client(user)
        for name in names:
            response = client.get(path, {name: value})
            if response.status_code >= 400:
                _assert_documented_error(response)
            else:
                assert response.status_code == 200


@pytest.mark.parametrize("value", [*HUGE_IDS, "a\x00b", "2024-13-45"])
def test_query_results_page_numbers_out_of_range_are_not_a_500(value, lead, succeeded_query):
    response = token_client(lead).get(f"/api/v1/queries/{succeeded_query.pk}/results/", {"page": value})
    if response.status_code != 200:
        _assert_documented_error(response)


@pytest.mark.parametrize("path", sorted({path for method, path in _operations({"PUT", "POST", "PATCH"})}))
def test_options_never_reaches_a_500(path, lead, open_case):
    response = token_client(lead).options(_concrete(path, str(open_case.pk)))
    assert response.status_code in (200, 404), (response.status_code, response.content[:300])
