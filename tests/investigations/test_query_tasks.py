"""The Celery side of the gateway: thin tasks, the beat schedule, an unreachable broker."""

from __future__ import annotations

import pytest
from django.conf import settings

from config.celery import app
from investigations import actions, tasks
from investigations.models import DataQuery, QueryStatus

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def test_beat_runs_the_sweeper_every_minute_and_the_purge_daily():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["requeue-stale-queries"]["task"] == tasks.requeue_stale_queries.name
    assert schedule["requeue-stale-queries"]["schedule"].total_seconds() == 60
    assert schedule["purge-expired-results"]["task"] == tasks.purge_expired_results.name


def test_tasks_return_quietly_for_a_missing_or_finished_query(succeeded_query):
    assert tasks.run_query.run(10**9) is None
    assert tasks.run_query.run(succeeded_query.pk) is None
    assert tasks.requeue_stale_queries.run() == {"queued": 0}
    assert tasks.purge_expired_results.run() == 0


def test_run_task_runs_a_queued_query(wide_grant, lead):
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    assert tasks.run_query.run(query.pk) == QueryStatus.SUCCEEDED


@pytest.mark.redis
@pytest.mark.django_db(transaction=True, databases=["default", "userdata"])
@pytest.mark.usefixtures("migrated_rows")
def test_unreachable_redis_at_submit_records_the_query_queued(wide_grant, lead, monkeypatch):
    # Not the shared server: this process alone points at a port where nothing listens.
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app.conf, "broker_write_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    assert query.enqueue_failed is True
    assert DataQuery.objects.get(pk=query.pk).status == QueryStatus.QUEUED
