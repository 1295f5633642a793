"""schemathesis against the served schema, in process, as an investigator and as an auditor.

Every operation gets a bounded number of generated requests (``MAX_EXAMPLES``) on a database
holding a case, a grant and a succeeded query, so that valid ids exist; the checks are the
contract: no 5xx, only documented status codes and content types, and bodies that match
the schema. (Whether a generated "valid" request must succeed is not checked: most generated
ids name objects the caller may not see, and 404 is the right answer for those.)
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import token_client

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

MAX_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Logging out would revoke the token the rest of the run uses; logout has its own tests.
EXCLUDED_PATHS = ["/api/v1/auth/logout/"]


def _generated_schema() -> dict:
    """The schema ``/api/schema/`` serves (the same generator), as plain JSON data."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


schema = schemathesis.openapi.from_dict(_generated_schema()).exclude(path=EXCLUDED_PATHS)
schema.app = get_wsgi_application()


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler runs inside the test's transaction: it must not close the connection.
    (Requested after the token fixtures: the test client that obtains a token reconnects the
    handler it disconnects.)"""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schema.app
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def investigator_headers(lead, succeeded_query) -> dict:
    return {"Authorization": token_client(lead)._credentials["HTTP_AUTHORIZATION"]}


@pytest.fixture
def auditor_headers(auditor, succeeded_query) -> dict:
    return {"Authorization": token_client(auditor)._credentials["HTTP_AUTHORIZATION"]}


BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@BOUNDED
def test_api_contract_as_an_investigator(case, investigator_headers, wsgi_app):
    case.call_and_validate(headers=investigator_headers, checks=CHECKS)


@schema.parametrize()
@BOUNDED
def test_api_contract_as_an_auditor(case, auditor_headers, wsgi_app):
    case.call_and_validate(headers=auditor_headers, checks=CHECKS)


# Values no schema describes and every handler must refuse politely (issue 16, section 7):
# ids and numbers past a 64-bit integer, NUL bytes, impossible dates.
HOSTILE = [str(2**63), "9" * 30, "a\x00b", "2024-13-45"]
HOSTILE_CHECKS = [not_a_server_error, content_type_conformance]


def _hostile(case, value: str):
    """The generated request with every path and query parameter replaced by ``value``."""
    case.path_parameters = dict.fromkeys(case.path_parameters or {}, value) or None
    case.query = {**dict.fromkeys(case.query or {}, value), "page": value}
    return case


@schema.parametrize()
@settings(BOUNDED, max_examples=1)
def test_api_hostile_values_as_an_investigator(case, investigator_headers, wsgi_app):
    for value in HOSTILE:
        _hostile(case, value).call_and_validate(headers=investigator_headers, checks=HOSTILE_CHECKS)
