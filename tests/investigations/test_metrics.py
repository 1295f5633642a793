"""/metrics: closed unless configured; django-prometheus's metrics and Custos's own gauges, aggregates only."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from audit.models import AuditEvent
from investigations import actions
from investigations.actions.oversight import alerts_scan

from .fixtures import file_request

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])
TOKEN = "metrics-token-0123456789"


def scrape(client: Client, **headers) -> tuple[int, str]:
    response = client.get("/metrics", **headers)
    return response.status_code, response.content.decode()


def value(body: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", body, re.MULTILINE)
    assert match, f"{name}{labels} not in the metrics"
    return float(match.group(1))


def test_closed_unless_a_token_or_networks_are_configured(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    assert scrape(client)[0] == 404


def test_the_token_is_required_when_set(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = TOKEN, []
    assert scrape(client)[0] == 404
    assert scrape(client, HTTP_AUTHORIZATION="Bearer wrong")[0] == 404
    status, body = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == 200 and "custos_ledger_head_seq" in body


def test_networks_limit_who_may_scrape(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert scrape(client)[0] == 404  # the test client comes from 127.0.0.1
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    assert scrape(client)[0] == 200


def test_behind_a_proxy_the_network_is_the_clients_not_the_proxys(client, settings):
    """A request through the proxy comes from the proxy's inside address; it is the client's
    address (CUSTOS_PROXY_COUNT, audit.context.client_ip) that must be in the network."""
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.CUSTOS_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    assert scrape(client, HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy)[0] == 404
    assert scrape(client, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.5", **proxy)[0] == 404
    assert scrape(client, HTTP_X_FORWARDED_FOR="10.1.2.3", **proxy)[0] == 200


def test_gauges_follow_the_data_and_name_no_case_or_person(
    client, settings, open_case, lead, second_reviewer, store, admin_user
):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = TOKEN, []
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    actions.protected_subject_add(actor=admin_user, account_id=3, category="journalist")
    pending = actions.request_submit(
        actor=lead, request=file_request(open_case, lead, subjects=("3",), legal_basis="legal_process")
    )
    approved = actions.request_submit(actor=lead, request=file_request(open_case, lead))
    actions.request_decide(actor=second_reviewer, request=approved, outcome="approve")
    alerts_scan()
    _, body = scrape(client, **auth)
    assert value(body, "custos_requests_pending", '{age="<1h"}') == 1
    assert value(body, "custos_requests_pending", '{age=">=30d"}') == 0
    assert value(body, "custos_grants_active") == 1
    assert value(body, "custos_grants", '{status="active"}') == 1
    assert value(body, "custos_alerts_open", '{severity="warning"}') >= 1
    assert value(body, "custos_alert_oldest_open_age_seconds") >= 0
    assert value(body, "custos_queries", '{state="queued"}') == 0
    assert value(body, "custos_audit_last_verified_age_seconds") == -1
    head = AuditEvent.objects.order_by("-seq").first().seq
    assert head - 2 <= value(body, "custos_ledger_head_seq") <= head
    assert "django_http_requests_total_by_method_total" in body  # django-prometheus's own
    assert "django_db_execute_total" in body
    assert pending.is_protected
    for private in (open_case.reference, lead.username, second_reviewer.username, open_case.title, "journalist"):
        assert not re.search(rf"[\"{{=]{re.escape(private)}[\"}},]", body), private
