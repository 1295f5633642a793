"""Query pages: who sees what (404 / 403), field errors, recorded refusals, CSV, live status."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from kombu.exceptions import OperationalError as BrokerDown

from audit.events import Action
from audit.export import csv_cell
from audit.models import AuditEvent
from investigations import actions, enqueue
from investigations.models import DataQuery, DenialReason, QueryResult, QueryStatus

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def create_url(grant) -> str:
    return reverse("investigations:query_create", args=[grant.pk])


def page_url(name: str, query) -> str:
    return reverse(f"investigations:{name}", args=[query.pk])


def test_grantee_sees_the_form_limited_to_the_grant(login, lead, active_grant):
    response = login(lead).get(create_url(active_grant))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="ip_logs"' in body and 'value="profile"' in body and 'value="location"' not in body
    assert 'value="1"' in body and 'value="2"' in body
    assert "New query" in body


def test_submit_queues_and_redirects(login, lead, active_grant):
    response = login(lead).post(create_url(active_grant), {"category": "ip_logs", "page_size": "50"})
    query = DataQuery.objects.get()
    assert response.status_code == 302 and response.url == page_url("query_detail", query)
    assert query.status == QueryStatus.QUEUED and query.page_size == 50 and query.subjects == [1, 2]


def test_out_of_scope_subject_is_refused_and_recorded(login, lead, active_grant):
    response = login(lead).post(
        create_url(active_grant), {"category": "ip_logs", "subjects": ["1", "3"], "page_size": "10"}
    )
    assert response.status_code == 403
    query = DataQuery.objects.get()
    assert query.denial_reason == DenialReason.OUT_OF_SCOPE_SUBJECT
    assert "Refused" in response.content.decode() and page_url("query_detail", query) in response.content.decode()
    assert AuditEvent.objects.filter(action=Action.QUERY_DENIED).count() == 1


def test_window_outside_is_refused_and_recorded(login, lead, active_grant):
    early = (active_grant.window_start - timedelta(days=5)).isoformat()
    response = login(lead).post(
        create_url(active_grant), {"category": "ip_logs", "window_start": early, "page_size": "10"}
    )
    assert response.status_code == 403
    assert DataQuery.objects.get().denial_reason == DenialReason.OUT_OF_SCOPE_WINDOW


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"category": "messages", "page_size": "10"}, "category"),
        ({"category": "ip_logs", "window_start": "2026-02-30", "page_size": "10"}, "window_start"),
        ({"category": "ip_logs", "page_size": "0"}, "page_size"),
        ({"category": "ip_logs", "page_size": "999999"}, "page_size"),
        ({"category": "ip_logs", "subjects": ["x"], "page_size": "10"}, "subjects"),
    ],
)
def test_bad_input_shows_the_field_error_keeps_values_and_records_nothing(login, lead, active_grant, data, field):
    client = login(lead)
    before = AuditEvent.objects.count()
    response = client.post(create_url(active_grant), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert 'class="field-error"' in response.content.decode()
    assert response.context["form"].data["page_size"] == data["page_size"]
    assert not DataQuery.objects.exists() and AuditEvent.objects.count() == before


@pytest.mark.parametrize("persona", ["other_investigator", "outsider", "superuser", "admin_user", "auditor"])
def test_someone_elses_grant_is_404(login, active_grant, persona, request):
    client = login(request.getfixturevalue(persona))
    assert client.get(create_url(active_grant)).status_code == 404
    assert client.post(create_url(active_grant), {"category": "ip_logs", "page_size": "10"}).status_code == 404
    assert not DataQuery.objects.exists()


def test_team_member_who_is_not_a_grantee_is_refused_and_recorded(login, member, active_grant):
    client = login(member)
    assert client.get(create_url(active_grant)).status_code == 200
    assert client.post(create_url(active_grant), {"category": "ip_logs", "page_size": "10"}).status_code == 403
    assert DataQuery.objects.get().denial_reason == DenialReason.NOT_GRANTEE


@pytest.mark.django_db(transaction=True, databases=["default", "userdata"])
@pytest.mark.usefixtures("migrated_rows")
def test_broker_down_submit_still_works_and_says_the_query_waits(login, lead, wide_grant, monkeypatch):
    # Transactional, so the enqueue runs at the real commit inside the request, as in production.
    def down(*args, **kwargs):
        raise BrokerDown("connection refused")

    monkeypatch.setattr(enqueue, "send", down)
    response = login(lead).post(create_url(wide_grant), {"category": "ip_logs", "page_size": "10"}, follow=True)
    assert response.status_code == 200
    assert "waiting" in response.content.decode()
    assert DataQuery.objects.get().status == QueryStatus.QUEUED


def test_detail_and_status_for_the_grantee(login, lead, succeeded_query):
    client = login(lead)
    response = client.get(page_url("query_detail", succeeded_query))
    assert response.status_code == 200 and succeeded_query.digest in response.content.decode()
    assert response.context["can_see_results"] is True
    assert "js/query-status.js" in response.content.decode()
    status = client.get(page_url("query_status", succeeded_query)).json()
    assert status["status"] == "succeeded" and status["done"] is True
    assert status["digest"] == succeeded_query.digest and status["results_url"] == page_url(
        "query_results", succeeded_query
    )


def test_status_of_a_queued_query_is_not_done(login, lead, wide_grant):
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    status = login(lead).get(page_url("query_status", query)).json()
    assert status == {**status, "status": "queued", "done": False, "results_url": "", "digest": ""}


def test_results_page_is_paginated_shows_digest_and_is_audited(login, lead, wide_grant):
    query = actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs", page_size=5)
    response = login(lead).get(page_url("query_results", query) + "?page=2")
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == min(5, query.row_count - 5)
    assert query.digest in response.content.decode()
    event = AuditEvent.objects.get(action=Action.RESULTS_VIEWED)
    assert event.target_id == str(query.pk) and event.details["page"] == 2


def test_csv_download_is_audited_and_matches_the_stored_rows(login, lead, succeeded_query):
    response = login(lead).get(page_url("query_download", succeeded_query))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    stored = QueryResult.objects.get(query=succeeded_query)
    assert rows[0] == stored.columns and len(rows) - 1 == len(stored.rows)
    assert AuditEvent.objects.filter(action=Action.RESULTS_DOWNLOADED, target_id=str(succeeded_query.pk)).count() == 1


@pytest.mark.parametrize("cell", ["=HYPERLINK(1)", "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_csv_neutralises_formulas(cell):
    """Downloads share the audit export's guard: a formula gets a leading quote, a control character is escaped."""
    assert csv_cell(cell) == "'" + cell.replace("\t", "\\x09").replace("\r", "\\x0d")
    assert csv_cell("Berlin") == "Berlin" and csv_cell(None) == "" and csv_cell(42) == "42"


def test_auditor_sees_the_record_but_never_the_rows(login, auditor, succeeded_query):
    client = login(auditor)
    response = client.get(page_url("query_detail", succeeded_query))
    assert response.status_code == 200 and succeeded_query.digest in response.content.decode()
    assert response.context["can_see_results"] is False
    assert client.get(page_url("query_results", succeeded_query)).status_code == 403
    assert client.get(page_url("query_download", succeeded_query)).status_code == 403
    assert client.get(page_url("query_status", succeeded_query)).json()["results_url"] == ""
    assert not AuditEvent.objects.filter(action__in=[Action.RESULTS_VIEWED, Action.RESULTS_DOWNLOADED]).exists()


@pytest.mark.parametrize("persona", ["member", "other_investigator", "outsider", "superuser", "admin_user"])
def test_others_get_404_on_every_query_page(login, succeeded_query, persona, request):
    client = login(request.getfixturevalue(persona))
    for name in ("query_detail", "query_status", "query_results", "query_download"):
        assert client.get(page_url(name, succeeded_query)).status_code == 404, name


def test_revoked_grant_results_are_withheld_from_the_grantee(login, lead, reviewer, succeeded_query):
    actions.grant_revoke(actor=reviewer, grant=succeeded_query.grant, reason="Abuse suspected.")
    client = login(lead)
    assert client.get(page_url("query_detail", succeeded_query)).status_code == 200
    assert client.get(page_url("query_results", succeeded_query)).status_code == 403
    assert client.get(page_url("query_download", succeeded_query)).status_code == 403


def test_grant_queries_partial_lists_queries_with_a_constant_number_of_sql_queries(login, lead, wide_grant):
    client = login(lead)
    for _ in range(3):
        actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    with CaptureQueriesContext(connection) as few:
        response = client.get(create_url(wide_grant))
    assert response.content.decode().count('href="/queries/') == 3
    for _ in range(9):
        actions.query_submit(actor=lead, grant=wide_grant, category="location")
    with CaptureQueriesContext(connection) as many:
        response = client.get(create_url(wide_grant))
    assert response.content.decode().count('href="/queries/') == 12
    assert len(many) == len(few)


def test_pages_are_not_for_anonymous_visitors(client, succeeded_query):
    response = client.get(page_url("query_results", succeeded_query))
    assert response.status_code == 302 and "login" in response.url
