"""How an action rings a worker's doorbell: it sends the task by its name.

``tasks.py`` imports the actions (a task re-fetches its rows and calls one); the actions reach
the tasks only through the names here, so nothing imports back. The database stays the record:
a doorbell lost to a broker that cannot be reached is rung again by a sweeper or the beat
schedule (each caller says which, and logs the failure).
"""

from __future__ import annotations

from celery import current_app

RUN_QUERY = "investigations.run_query"
SCAN_OVERSIGHT = "investigations.scan_oversight"


def send(task: str, *args: int) -> None:
    """Enqueue ``task`` with ``args``. ``retry=False``: an unreachable broker fails fast (the
    broker's error is raised) instead of holding the request."""
    current_app.send_task(task, args=list(args), kwargs={}, retry=False)
