"""Every retrying task waits at least a second before each retry (issue 21: "Retry in 0s").

Celery computes the wait with ``get_exponential_backoff_interval``; with full jitter it draws
from ``range(backoff + 1)``, so the smallest draw is 0. The smallest draw is forced here.
"""

from __future__ import annotations

import random
from unittest import mock

import pytest
from celery.utils.time import get_exponential_backoff_interval

from config.celery import app

MINIMUM_SECONDS = 1


def _retrying_tasks():
    app.loader.import_default_modules()
    return sorted(
        (
            task
            for name, task in app.tasks.items()
            if not name.startswith("celery.") and getattr(task, "autoretry_for", ())
        ),
        key=lambda task: task.name,
    )


@pytest.mark.parametrize("task", _retrying_tasks(), ids=lambda task: task.name)
def test_no_retry_fires_at_once(task):
    assert task.retry_backoff, f"{task.name} retries without a backoff"
    with mock.patch.object(random, "randrange", lambda stop: 0):  # the luckiest jitter draw
        waits = [
            get_exponential_backoff_interval(
                factor=int(max(1.0, task.retry_backoff)),
                retries=retries,
                maximum=task.retry_backoff_max,
                full_jitter=task.retry_jitter,
            )
            for retries in range(task.max_retries)
        ]
    assert min(waits) >= MINIMUM_SECONDS, (task.name, waits)
