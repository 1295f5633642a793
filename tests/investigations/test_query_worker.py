"""The gateway with a real Celery worker process: the run, revocation, a crash, a lost broker."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import reverse

from audit.events import Action
from audit.models import AuditEvent
from custos_testing.worker import CeleryWorker, wait_for
from investigations import actions, enqueue, gateway
from investigations.models import DataQuery, DenialReason, QueryResult, QueryStatus
from investigations.tasks import run_query

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]



def status_of(query: DataQuery) -> str:
    return DataQuery.objects.values_list("status", flat=True).get(pk=query.pk)


def finished(query: DataQuery) -> bool:
    return status_of(query) in {QueryStatus.SUCCEEDED, QueryStatus.DENIED, QueryStatus.FAILED}


def completions(query: DataQuery):
    return AuditEvent.objects.filter(action=Action.QUERY_COMPLETED, target_id=str(query.pk))


def test_approve_query_worker_results_view_and_download(celery_worker_process, login, lead, wide_grant):
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    wait_for(lambda: finished(query), "the query run", celery_worker_process)
    query.refresh_from_db()
    assert query.status == QueryStatus.SUCCEEDED, query.error
    result = QueryResult.objects.get(query=query)
    assert query.row_count == len(result.rows) > 0
    assert query.digest == gateway.result_digest(result.columns, result.rows)
    client = login(lead)
    assert client.get(reverse("investigations:query_results", args=[query.pk])).status_code == 200
    assert client.get(reverse("investigations:query_download", args=[query.pk])).status_code == 200
    for action in (Action.QUERY_REQUESTED, Action.QUERY_COMPLETED, Action.RESULTS_VIEWED, Action.RESULTS_DOWNLOADED):
        assert AuditEvent.objects.filter(action=action, target_id=str(query.pk)).count() == 1, action


def test_revoked_while_queued_is_denied_by_the_worker(celery_worker_process, lead, reviewer, wide_grant, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(enqueue, "send", lambda *args: None)  # the doorbell is late
        query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    actions.grant_revoke(actor=reviewer, grant=wide_grant, reason="Revoked while the query waited.")
    assert actions.requeue_stale_queries(queued_after=timedelta(0)).queued == 1
    wait_for(lambda: finished(query), "the query run", celery_worker_process)
    query.refresh_from_db()
    assert query.status == QueryStatus.DENIED and query.denial_reason == DenialReason.GRANT_REVOKED
    assert not QueryResult.objects.exists()
    assert AuditEvent.objects.filter(action=Action.QUERY_DENIED, target_id=str(query.pk)).count() == 1
    assert not AuditEvent.objects.filter(action=Action.QUERY_COMPLETED).exists()


def test_broker_down_at_submit_runs_after_it_returns(celery_worker_process, lead, wide_grant, monkeypatch):
    from kombu.exceptions import OperationalError as BrokerDown

    def down(*args, **kwargs):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(enqueue, "send", down)
        query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    assert query.enqueue_failed and status_of(query) == QueryStatus.QUEUED
    # The broker is back; the beat's sweeper (called here as beat would) re-rings the doorbell.
    assert actions.requeue_stale_queries(queued_after=timedelta(0)).queued == 1
    wait_for(lambda: finished(query), "the query run", celery_worker_process)
    assert status_of(query) == QueryStatus.SUCCEEDED
    assert completions(query).count() == 1


def held_by_a_run(query: DataQuery) -> bool:
    """A live run holds the query's row lock until its commit (PostgreSQL: SKIP LOCKED finds it taken)."""
    with transaction.atomic():
        return not DataQuery.objects.select_for_update(skip_locked=True).filter(pk=query.pk).exists()


def shown_status(client, query: DataQuery) -> str:
    return client.get(reverse("investigations:query_status", args=[query.pk])).json()["status_label"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks seen from outside: PostgreSQL")
def test_worker_killed_mid_query_is_retried_within_seconds_and_completes_once(lead, login, wide_grant, tmp_path):
    client = login(lead)
    slow = CeleryWorker(log_path=tmp_path / "slow.log", include=("tests.worker_tasks", "tests.slow_reads"))
    slow.start()
    try:
        query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
        wait_for(lambda: held_by_a_run(query), "the run's claim", slow)
        # Mid-run: nothing is committed yet, so nobody sees it running, or any of its rows.
        assert status_of(query) == QueryStatus.QUEUED and shown_status(client, query) == "Queued"
        assert not QueryResult.objects.exists()
        # The pool process dies mid-read: its transaction dies with its connection; the main
        # process hands the message back and it is redelivered, noted as a retry.
        [child] = slow.child_pids()
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: shown_status(client, query) == "Retrying", "the query shown retrying", slow)
        assert status_of(query) == QueryStatus.QUEUED and not completions(query).exists()
        # Now the whole worker dies (the retry was mid-read too). The query is claimable at once:
        # no stale threshold, no lock left behind.
        wait_for(lambda: held_by_a_run(query), "the retry's claim", slow)
        slow.kill_hard()
        wait_for(lambda: not held_by_a_run(query), "the lock's release", slow)
        assert shown_status(client, query) == "Retrying"
    finally:
        slow.stop()
    fresh = CeleryWorker(log_path=tmp_path / "fresh.log")
    fresh.start()
    try:
        assert actions.requeue_stale_queries(queued_after=timedelta(0)).queued == 1  # beat's sweeper
        wait_for(lambda: finished(query), "the re-run", fresh)
        # Late duplicates change nothing.
        run_query.apply_async(args=[query.pk], retry=False)
        run_query.apply_async(args=[query.pk], kwargs={"takeover": 1}, retry=False)
        assert actions.requeue_stale_queries(queued_after=timedelta(0)).queued == 0
        time.sleep(2)  # not an assertion on time: give duplicates a chance to (wrongly) run
    finally:
        fresh.stop()
    query.refresh_from_db()
    assert query.status == QueryStatus.SUCCEEDED and query.attempts >= 3 and not query.retrying
    assert completions(query).count() == 1
    assert QueryResult.objects.filter(query=query).count() == 1
    assert AuditEvent.objects.filter(action=Action.QUERY_REQUESTED, target_id=str(query.pk)).count() == 1
    assert not AuditEvent.objects.filter(action=Action.QUERY_FAILED, target_id=str(query.pk)).exists()
