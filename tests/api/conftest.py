"""API fixtures: a token client per persona (real knox tokens, sent as ``Authorization: Token``).

The investigation fixtures (cases, requests, grants, the user-data store) are shared with the
page tests, so the API is tested on exactly the objects the pages are.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.investigations.conftest import (  # noqa: F401  (fixtures)
    active_grant,
    draft_request,
    evidence_store,
    migrated_rows,
    open_case,
    protected_request,
    store,
    submitted_request,
    succeeded_query,
    wide_grant,
)
from tests.investigations.test_case_matrix import cast  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def api_settings(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    cache.clear()  # throttle counters must not leak from one test to the next
    yield
    cache.clear()


def token_client(user) -> APIClient:
    """A client holding a fresh token of ``user`` (made directly: no login event in the ledger)."""
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
