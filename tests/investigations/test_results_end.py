"""Results end with the grant (issue 16, section 5).

Once a grant expires (by the database clock, whether or not the expiry task ran), is revoked
or its case closes, the rows of its queries are not readable through the query: the page, the
CSV and the API answer 403 (``results_unavailable`` in the API). The rows are purged after the
retention period, the purge recorded; the record (row count, digest) stays for auditors.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.actions import query as query_actions
from investigations.models import DataQuery, Grant, GrantStatus, QueryResult
from investigations.models.grant import db_now
from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _end_by_expiry(query: DataQuery, **_) -> None:
    # Only expires_at moves: status stays "active", as when the expiry task has not run yet.
    Grant.objects.filter(pk=query.grant_id).update(expires_at=db_now() - timedelta(seconds=1))


def _end_by_revocation(query: DataQuery, reviewer, **_) -> None:
    actions.grant_revoke(actor=reviewer, grant=query.grant, reason="Scope exceeded.")


def _end_by_closure(query: DataQuery, lead, **_) -> None:
    actions.case_close(actor=lead, case=query.grant.case, summary="Concluded: no misconduct found.")


ENDINGS = {"expired": _end_by_expiry, "revoked": _end_by_revocation, "case closed": _end_by_closure}


def _rows_readable_everywhere(lead, query: DataQuery, client) -> dict[str, int]:
    client.force_login(lead)
    return {
        "page": client.get(reverse("investigations:query_results", args=[query.pk])).status_code,
        "csv": client.get(reverse("investigations:query_download", args=[query.pk])).status_code,
        "api": token_client(lead).get(f"/api/v1/queries/{query.pk}/results/").status_code,
    }


def test_rows_are_readable_while_the_grant_is_in_force(succeeded_query, lead, client):
    assert _rows_readable_everywhere(lead, succeeded_query, client) == {"page": 200, "csv": 200, "api": 200}


@pytest.mark.parametrize("ending", ENDINGS)
def test_rows_are_unreadable_once_the_grant_ends(ending, succeeded_query, lead, reviewer, client):
    ENDINGS[ending](succeeded_query, lead=lead, reviewer=reviewer)
    succeeded_query.refresh_from_db()
    mark = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert _rows_readable_everywhere(lead, succeeded_query, client) == {"page": 403, "csv": 403, "api": 403}
    body = token_client(lead).get(f"/api/v1/queries/{succeeded_query.pk}/results/").json()
    assert body["code"] == "results_unavailable"
    assert "no longer readable" in body["detail"]
    record = token_client(lead).get(f"/api/v1/queries/{succeeded_query.pk}/").json()
    assert record["results_available"] is False and record["digest"] == succeeded_query.digest
    # Nothing was read: no results.viewed or results.downloaded event after the grant ended.
    read = (Action.RESULTS_VIEWED, Action.RESULTS_DOWNLOADED)
    assert not AuditEvent.objects.filter(seq__gt=mark, action__in=read).exists()
    # Not purged yet: stored, unreadable, until the retention period is over.
    assert QueryResult.objects.filter(query=succeeded_query).exists()


def test_expiry_by_the_database_clock_without_the_task(succeeded_query, lead):
    _end_by_expiry(succeeded_query)
    succeeded_query.refresh_from_db()
    assert succeeded_query.grant.status == GrantStatus.ACTIVE  # the expiry task has not run
    assert "ended" in query_actions.results_problem(lead, succeeded_query)


def test_rows_are_unreadable_while_the_case_is_on_hold_and_again_after(succeeded_query, lead, client):
    case = succeeded_query.grant.case
    actions.case_hold(actor=lead, case=case)
    succeeded_query.refresh_from_db()
    assert _rows_readable_everywhere(lead, succeeded_query, client) == {"page": 403, "csv": 403, "api": 403}
    actions.case_resume(actor=lead, case=case)
    succeeded_query.refresh_from_db()
    assert _rows_readable_everywhere(lead, succeeded_query, client)["api"] == 200


def test_auditor_keeps_the_metadata_after_the_purge(succeeded_query, lead, auditor, settings):
    settings.CUSTOS = {**settings.CUSTOS, "RESULT_RETENTION_DAYS": 30}
    Grant.objects.filter(pk=succeeded_query.grant_id).update(expires_at=db_now() - timedelta(days=31))
    assert actions.purge_expired_results() == 1
    body = token_client(auditor).get(f"/api/v1/queries/{succeeded_query.pk}/").json()
    assert body["row_count"] == succeeded_query.row_count and body["digest"] == succeeded_query.digest
    assert body["results_available"] is False
    event = AuditEvent.objects.get(action=Action.RESULTS_PURGED, target_id=str(succeeded_query.pk))
    assert event.details["digest"] == succeeded_query.digest and event.details["grant"] == succeeded_query.grant_id
    assert token_client(lead).get(f"/api/v1/queries/{succeeded_query.pk}/results/").json()["code"] == (
        "results_unavailable"
    )


@pytest.mark.parametrize("ending", ENDINGS)
def test_purge_waits_for_the_retention_period_after_each_ending(ending, succeeded_query, lead, reviewer, settings):
    settings.CUSTOS = {**settings.CUSTOS, "RESULT_RETENTION_DAYS": 30}
    ENDINGS[ending](succeeded_query, lead=lead, reviewer=reviewer)
    now = db_now()
    assert actions.purge_expired_results(now=now + timedelta(days=29)) == 0
    assert actions.purge_expired_results(now=now + timedelta(days=31)) == 1
    assert not QueryResult.objects.filter(query=succeeded_query).exists()
    assert AuditEvent.objects.filter(action=Action.RESULTS_PURGED, target_id=str(succeeded_query.pk)).count() == 1


def test_a_purge_that_finds_the_rows_gone_records_nothing(succeeded_query, monkeypatch):
    """Two purge runs at once: the one that finds the rows already deleted records no second event."""
    Grant.objects.filter(pk=succeeded_query.grant_id).update(expires_at=db_now() - timedelta(days=400))
    real_filter = QueryResult.objects.filter

    def gone_meanwhile(*args, **kwargs):
        rows = real_filter(*args, **kwargs)
        if "pk" in kwargs:  # the run's own delete: another run deleted the rows just before
            real_filter(pk=kwargs["pk"]).delete()
        return rows

    monkeypatch.setattr(QueryResult.objects, "filter", gone_meanwhile)
    assert actions.purge_expired_results() == 0
    assert not AuditEvent.objects.filter(action=Action.RESULTS_PURGED).exists()
