"""Alert pages (auditors only, everyone else 404), acknowledging through the page, and scope-diff reports."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.actions.lifecycle import grants_expire_due
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, Grant, GrantReport, QueryResult
from userdata.catalogue import CATEGORIES

from .fixtures import file_request

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

NON_AUDITORS = ["lead", "member", "reviewer", "senior_reviewer", "admin_user", "superuser", "outsider"]


@pytest.fixture
def alert(protected_request):
    alerts_scan()
    return Alert.objects.get()


def alert_urls(alert: Alert) -> list[str]:
    return [
        reverse("investigations:alert_list"),
        reverse("investigations:alert_detail", args=[alert.pk]),
        reverse("investigations:alert_acknowledge", args=[alert.pk]),
        reverse("investigations:report_list"),
    ]


# --- who sees alerts ---------------------------------------------------------------------


@pytest.mark.parametrize("persona", NON_AUDITORS)
def test_non_auditors_get_404_on_every_alert_page(alert, persona, request, login):
    client = login(request.getfixturevalue(persona))
    for url in alert_urls(alert):
        assert client.get(url).status_code == 404, url
    response = client.post(reverse("investigations:alert_acknowledge", args=[alert.pk]), {"note": "Fine."})
    assert response.status_code == 404
    alert.refresh_from_db()
    assert not alert.is_acknowledged


def test_anonymous_is_sent_to_login(alert, client):
    response = client.get(reverse("investigations:alert_list"))
    assert response.status_code == 302 and "/login" in response["Location"]


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("investigations:alert_list")).status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_for_one_alert_or_many(alert, auditor, lead, login):
    client = login(auditor)
    one = _list_queries(client)
    for _ in range(3):
        actions.request_submit(actor=lead, request=file_request(alert.case, lead, legal_basis="legal_process"))
    alerts_scan()
    assert Alert.objects.count() == 4
    assert _list_queries(client) == one <= 15


def test_auditor_sees_the_list_with_filters_and_the_count(alert, auditor, login):
    client = login(auditor)
    page = client.get(reverse("investigations:alert_list")).content.decode()
    assert alert.summary in page
    assert 'title="open alerts">1<' in page  # the nav badge
    assert '>1</span> oversight alert awaiting' in client.get(reverse("home")).content.decode()
    acknowledged = client.get(reverse("investigations:alert_list"), {"state": "acknowledged"}).content.decode()
    assert alert.summary not in acknowledged
    other_kind = client.get(reverse("investigations:alert_list"), {"kind": "tripwire"}).content.decode()
    assert alert.summary not in other_kind
    bad = client.get(reverse("investigations:alert_list"), {"kind": "nonsense"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    viewed = AuditEvent.objects.filter(action=Action.AUDIT_VIEWED, actor_id=auditor.pk, details__page="alert_list")
    assert viewed.count() == 4


def test_detail_shows_related_objects_and_the_triggering_event(alert, auditor, login):
    page = login(auditor).get(reverse("investigations:alert_detail", args=[alert.pk])).content.decode()
    assert alert.case.reference in page
    assert reverse("audit:event_detail", args=[alert.event_seq]) in page
    assert "request.submitted" in page
    assert AuditEvent.objects.filter(action=Action.AUDIT_VIEWED, target_id=str(alert.pk)).exists()


def test_alert_pages_show_no_user_data(alert, auditor, login):
    """Alerts hold ids and counts: no handle, email or IP of the store appears on the pages."""
    client = login(auditor)
    page = client.get(reverse("investigations:alert_detail", args=[alert.pk])).content.decode()
    page += client.get(reverse("investigations:alert_list")).content.decode()
    assert "@example.com" not in page and "handle" not in page.lower()


# --- acknowledging through the page ------------------------------------------------------


def test_acknowledge_page_asks_for_a_note_then_records_it(alert, auditor, login):
    client = login(auditor)
    url = reverse("investigations:alert_acknowledge", args=[alert.pk])
    assert "Acknowledging closes the alert" in client.get(url).content.decode()
    empty = client.post(url, {"note": "  "})
    assert empty.status_code == 200 and "This field is required" in empty.content.decode()
    alert.refresh_from_db()
    assert not alert.is_acknowledged
    response = client.post(url, {"note": "Checked with legal: court order on file."})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == auditor and alert.note == "Checked with legal: court order on file."
    assert AuditEvent.objects.filter(action=Action.ALERT_ACKNOWLEDGED, target_id=str(alert.pk)).count() == 1
    assert client.post(url, {"note": "Again."}).status_code == 409
    assert AuditEvent.objects.filter(action=Action.ALERT_ACKNOWLEDGED).count() == 1


def test_acknowledged_alerts_leave_the_count(alert, auditor, login):
    client = login(auditor)
    client.post(reverse("investigations:alert_acknowledge", args=[alert.pk]), {"note": "Seen and explained."})
    assert 'title="open alerts"' not in client.get(reverse("home")).content.decode()


# --- scope-diff reports ------------------------------------------------------------------


@pytest.fixture
def used_grant(wide_grant, lead):
    """The wide grant (accounts 1-3, ip_logs + location) with one ip_logs query on accounts 1 and 2."""
    query = actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs", subjects=[1, 2])
    return wide_grant, query


def expected_rows(query) -> dict[int, int]:
    result = QueryResult.objects.get(query=query)
    column = result.columns.index(CATEGORIES["ip_logs"].subject_field)
    return Counter(row[column] for row in result.rows)


def test_revoking_writes_a_report_of_unused_scope_and_rows_per_subject(used_grant, reviewer):
    grant, query = used_grant
    assert query.rows_by_subject == {str(k): v for k, v in sorted(expected_rows(query).items())}
    actions.grant_revoke(actor=reviewer, grant=grant, reason="Investigation finished.")
    scan = alerts_scan()
    report = GrantReport.objects.get(grant=grant)
    assert scan.reports == [report.pk] and report.ended == "revoked"
    assert report.unused_categories == ["location"]
    assert report.unused_subjects == [3]
    rows = {entry["subject"]: entry["rows"] for entry in report.content["subjects"]}
    counted = expected_rows(query)
    assert rows == {1: counted[1], 2: counted[2], 3: 0} and counted[1] > 0
    assert report.content["rows_total"] == query.row_count
    assert report.content["revoke_reason"] == "Investigation finished."
    written = AuditEvent.objects.get(action=Action.GRANT_REPORT_WRITTEN, target_id=str(grant.pk))
    assert written.details["unused_categories"] == ["location"]
    alerts_scan()
    assert GrantReport.objects.count() == 1  # one report per grant


def test_expiry_writes_the_report(used_grant):
    grant, _ = used_grant
    Grant.objects.filter(pk=grant.pk).update(expires_at=F("starts_at") + timedelta(microseconds=1))
    assert grants_expire_due() == 1
    alerts_scan()
    report = GrantReport.objects.get(grant=grant)
    assert report.ended == "expired" and report.unused_categories == ["location"]


def test_closing_the_case_writes_the_report(used_grant, lead):
    grant, _ = used_grant
    actions.case_close(actor=lead, case=grant.case, summary="Done: the leak was found.")
    alerts_scan()
    assert GrantReport.objects.get(grant=grant).ended == "revoked"


def test_denied_attempts_are_counted_not_used(wide_grant, lead, reviewer):
    from investigations.errors import QueryDenied

    with pytest.raises(QueryDenied):
        actions.query_submit(actor=lead, grant=wide_grant, category="contacts")
    actions.grant_revoke(actor=reviewer, grant=wide_grant, reason="Stopped.")
    alerts_scan()
    report = GrantReport.objects.get(grant=wide_grant)
    assert report.content["denials"] == {"out_of_scope_category": 1}
    assert report.unused_categories == ["ip_logs", "location"] and report.unused_subjects == [1, 2, 3]


def test_report_is_on_the_grant_page_and_the_auditor_pages(used_grant, reviewer, lead, auditor, outsider, login):
    grant, _ = used_grant
    actions.grant_revoke(actor=reviewer, grant=grant, reason="Investigation finished.")
    alerts_scan()
    report = GrantReport.objects.get(grant=grant)
    grant_page = login(lead).get(reverse("investigations:grant_detail", args=[grant.pk])).content.decode()
    assert "Approved against used" in grant_page and "Rows per subject" in grant_page
    detail = reverse("investigations:report_detail", args=[report.pk])
    assert login(lead).get(detail).status_code == 200
    auditor_client = login(auditor)
    assert f"grant {grant.pk}" in auditor_client.get(reverse("investigations:report_list")).content.decode()
    assert "location" in auditor_client.get(detail).content.decode()
    assert login(outsider).get(detail).status_code == 404
