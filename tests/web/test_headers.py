"""Security headers: CSP without inline code, Permissions-Policy, COOP, and no-store on
everything that carries case contents, results or audit data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    pairs = (part.strip().split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in pairs}


def assert_no_store(response) -> None:
    where = (response.request["PATH_INFO"], response.get("Cache-Control"))
    assert "no-store" in response.get("Cache-Control", ""), where


def test_pages_send_a_csp_without_inline_code_and_the_other_headers(lead, client):
    client.force_login(lead)
    response = client.get(reverse("investigations:case_list"))
    directives = _directives(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    policy = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in policy
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_login_page_has_the_headers_too(client):
    response = client.get(reverse("account_login"))
    assert _directives(response)["script-src"] == ["'self'"]
    assert_no_store(response)


def test_pages_with_case_contents_results_and_audit_data_are_no_store(succeeded_query, lead, auditor, client):
    client.force_login(lead)
    case = succeeded_query.grant.case
    for url in (
        reverse("home"),
        reverse("investigations:case_detail", args=[case.pk]),
        reverse("investigations:grant_detail", args=[succeeded_query.grant_id]),
        reverse("investigations:query_detail", args=[succeeded_query.pk]),
        reverse("investigations:query_status", args=[succeeded_query.pk]),
        reverse("investigations:query_results", args=[succeeded_query.pk]),
        reverse("investigations:query_download", args=[succeeded_query.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_store(response)
    client.force_login(auditor)
    for url in (
        reverse("audit:event_list"),
        reverse("audit:case_timeline", args=[case.reference]),
        reverse("audit:export") + "?format=csv",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_store(response)


def test_api_answers_with_case_contents_results_and_audit_data_are_no_store(succeeded_query, lead, auditor):
    api = token_client(lead)
    case = succeeded_query.grant.case
    for url in (
        reverse("api:case-list"),
        reverse("api:case-detail", args=[case.pk]),
        reverse("api:query-detail", args=[succeeded_query.pk]),
        reverse("api:query-results", args=[succeeded_query.pk]),
    ):
        response = api.get(url)
        assert response.status_code == 200, url
        assert_no_store(response)
    response = token_client(auditor).get(reverse("api:audit-events"))
    assert response.status_code == 200
    assert_no_store(response)


def test_error_answers_are_no_store_too(lead, client):
    client.force_login(lead)
    assert_no_store(client.get("/cases/999999/"))


def test_static_files_stay_cacheable(client, settings):
    settings.WHITENOISE_USE_FINDERS = True  # as in the embedded default: no collectstatic needed
    response = client.get(settings.STATIC_URL + "css/custos.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_api_docs_page_loads_its_start_up_script_from_a_url(lead, client):
    client.force_login(lead)
    page = client.get(reverse("api-docs")).content.decode()
    assert "<style" not in page
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts and all('src="' in attributes and not body.strip() for attributes, body in scripts)


INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
# A script element without src, unless it is a data block (type="application/json", as
# json_script and allauth's WebAuthn forms write): a browser never runs one, so the CSP allows it.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*\btype=\"application/json\")[^>]*>", re.I)


def test_no_template_has_inline_script_style_or_event_handlers():
    """The CSP would block them: every script is a static file, every handler is bound in one."""
    offenders = []
    for template in sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")):
        text = template.read_text()
        for pattern in (INLINE_HANDLER, INLINE_SCRIPT, re.compile(r"<style|\sstyle=", re.I)):
            if pattern.search(text):
                offenders.append(f"{template.relative_to(settings.BASE_DIR)}: {pattern.pattern}")
    assert offenders == []
