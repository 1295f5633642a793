"""Celery signal handlers that record each task's last start, success, failure and run time.

Operational telemetry, not business logic (the house rule against signals is about the
latter). A handler never fails the task it watches: a database error is logged and dropped.
Each write is one upsert on the task's row, so concurrent workers never collide.
"""

from __future__ import annotations

import logging
import time

from celery import signals
from django.utils import timezone

from .models import TaskHealth

logger = logging.getLogger(__name__)

# task id -> monotonic start time, in the pool process that runs the task.
_started: dict[str | None, float] = {}


def _save(task: str, **fields) -> None:
    try:
        TaskHealth.objects.bulk_create(
            [TaskHealth(task=task, **fields)],
            update_conflicts=True,
            unique_fields=["task"],
            update_fields=list(fields),
        )
    except Exception:  # the task itself must not fail because its health could not be written
        logger.exception("could not record the health of task %s", task)


def _runtime(task_id: str | None) -> float | None:
    started = _started.pop(task_id, None)
    return round(time.monotonic() - started, 3) if started is not None else None


def task_started(sender=None, task_id=None, task=None, **kwargs) -> None:
    _started[task_id] = time.monotonic()
    _save(task.name, last_started_at=timezone.now())


def task_succeeded(sender=None, **kwargs) -> None:
    _save(sender.name, last_succeeded_at=timezone.now(), last_runtime=_runtime(sender.request.id))


def task_failed(sender=None, task_id=None, exception=None, **kwargs) -> None:
    error = f"{type(exception).__name__}: {exception}"[:500]
    _save(sender.name, last_failed_at=timezone.now(), last_error=error, last_runtime=_runtime(task_id))


def connect() -> None:
    signals.task_prerun.connect(task_started, weak=False, dispatch_uid="operations.task_started")
    signals.task_success.connect(task_succeeded, weak=False, dispatch_uid="operations.task_succeeded")
    signals.task_failure.connect(task_failed, weak=False, dispatch_uid="operations.task_failed")
