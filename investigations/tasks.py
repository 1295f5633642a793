"""Celery tasks: thin doorbells that re-fetch from the database and call an action.

JSON arguments only; ``acks_late`` and reject-on-worker-lost come from settings. A lost
message loses nothing: the sweeper re-derives pending work from the database.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from .actions import query as query_actions

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": 2, "retry_backoff_max": 60, "max_retries": 5}


@shared_task(name="investigations.run_query", **RETRY)
def run_query(query_id: int, takeover: int | None = None) -> str | None:
    """Run one query; returns quietly if it is gone, done, or someone else's."""
    query = query_actions.query_run(query_id=query_id, takeover=takeover)
    return query.status if query is not None else None


@shared_task(name="investigations.requeue_stale_queries", **RETRY)
def requeue_stale_queries() -> dict:
    sweep = query_actions.requeue_stale_queries()
    return {"queued": sweep.queued, "taken_over": sweep.taken_over}


@shared_task(name="investigations.purge_expired_results", **RETRY)
def purge_expired_results() -> int:
    return query_actions.purge_expired_results()
