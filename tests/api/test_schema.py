"""The OpenAPI schema: generated without warnings, valid, served to callers, documented locally."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from .conftest import token_client

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings_and_validates(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert schema["info"]["title"] == "Custos API"
    assert {"/api/v1/cases/", "/api/v1/audit/verify/", "/api/v1/auth/token/"} <= set(schema["paths"])
    refused = schema["paths"]["/api/v1/grants/{id}/queries/"]["post"]["responses"]
    assert {"202", "400", "401", "403", "404", "409", "413", "429"} <= set(refused)
    assert "knoxApiToken" in schema["components"]["securitySchemes"]
    workspace = {  # the case workspace (issue 18): path -> the methods it offers
        "/api/v1/tags/": {"get"},
        "/api/v1/cases/{id}/classification/": {"post"},
        "/api/v1/cases/{id}/tasks/": {"get", "post"},
        "/api/v1/tasks/{id}/": {"get", "patch"},
        "/api/v1/tasks/{id}/status/": {"post"},
        "/api/v1/cases/{id}/evidence/": {"get", "post"},
        "/api/v1/evidence/{id}/": {"get"},
        "/api/v1/evidence/{id}/download/": {"get"},
        "/api/v1/queries/{id}/evidence/": {"post"},
        "/api/v1/cases/{id}/notes/": {"post"},
        "/api/v1/notes/{id}/": {"get", "patch"},
        "/api/v1/notes/{id}/versions/": {"get"},
        "/api/v1/cases/{id}/timeline/": {"get"},
        "/api/v1/cases/{id}/reports/": {"get", "post"},
        "/api/v1/case-reports/{id}/pdf/": {"get"},
        "/api/v1/cases/{id}/legal-hold/": {"post"},
    }
    missing = {path: sorted(methods - set(schema["paths"].get(path, {}))) for path, methods in workspace.items()}
    assert not {path: methods for path, methods in missing.items() if methods}, missing


def test_schema_is_served_to_authenticated_callers_only(lead):
    assert token_client(lead).get(reverse("api-schema"), {"format": "json"}).json()["openapi"].startswith("3.")


def test_docs_page_needs_a_login_and_loads_its_assets_locally(client, lead):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]
    client.force_login(lead)
    page = client.get(reverse("api-docs")).content.decode()
    assert "swagger-ui-dist" in page and "/static/drf_spectacular_sidecar/" in page
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
