"""How an action rings a worker's doorbell: it sends the task by its name.

``tasks.py`` imports the actions (a task re-fetches its rows and calls one); the actions reach
the tasks only through the names here, so nothing imports back. The database stays the record:
a doorbell lost to a broker that cannot be reached is rung again by a sweeper or the beat
schedule (each caller says which, and logs the failure).
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from functools import lru_cache

import redis
from celery import current_app

logger = logging.getLogger(__name__)

RUN_QUERY = "investigations.run_query"
SCAN_OVERSIGHT = "investigations.scan_oversight"
DELIVER_MAIL = "investigations.deliver_mail"
# The tasks rung through ring(), each with its own quiet window.
RUNG = (SCAN_OVERSIGHT, DELIVER_MAIL)

# Per task, the time.monotonic() until which this process's doorbell stays quiet.
_quiet_until: dict[str, float] = {}


def send(task: str, *args: int, countdown: float | None = None) -> None:
    """Enqueue ``task`` with ``args`` (to run ``countdown`` seconds from now, if given).
    ``retry=False``: an unreachable broker fails fast (the broker's error is raised) instead of
    holding the request."""
    current_app.send_task(task, args=list(args), kwargs={}, countdown=countdown, retry=False)


def ring(task: str, *, quiet_ms: int) -> bool:
    """Send ``task`` with the argument ``quiet_ms``, unless its doorbell rang less than
    ``quiet_ms`` ago, in this process or (on a Redis broker) in any other; True when it was sent.

    A task rung this way runs once more ``quiet_ms`` after it starts, so what committed while
    the doorbell was quiet is never left for the beat schedule: every ring left out came after
    a sent one and less than ``quiet_ms`` after it. Publishing costs a few milliseconds after
    every commit; the quiet window makes it one publish per window instead.

    Race: processes ringing at once claim the window with one ``SET NX PX`` in Redis, so one of
    them sends. Raises what ``send`` raises (the window is then not claimed in this process).
    """
    if quiet_ms <= 0:  # no window: every ring is sent
        send(task, 0)
        return True
    started = time.monotonic()
    if started < _quiet_until.get(task, 0.0):
        return False
    claimed, left_ms = _claim(task, quiet_ms)
    if claimed:
        send(task, quiet_ms)
    _quiet_until[task] = started + left_ms / 1000
    return claimed


def ring_again(task: str, quiet_ms: int) -> None:
    """The second run ``ring`` promises: ``task`` once more, ``quiet_ms`` from now, for what
    committed while its doorbell was quiet (the rung task calls this as it starts). An
    unreachable broker only logs: the beat schedule runs every rung task as well."""
    try:
        send(task, countdown=quiet_ms / 1000)
    except Exception:
        logger.warning("could not enqueue %s's second run; the beat schedule will run it", task, exc_info=True)


def forget_rings() -> None:
    """Reopen every doorbell, here and in Redis (tests: a test does not inherit the last one's window)."""
    _quiet_until.clear()
    client = _shared_client()
    if client is not None:
        with suppress(redis.RedisError):
            client.delete(*(_key(task) for task in RUNG))


def _claim(task: str, quiet_ms: int) -> tuple[bool, int]:
    """Claim the quiet window across processes: (claimed, milliseconds it stays quiet here).
    Without a Redis broker, or with Redis unreachable, each process keeps its own window."""
    client = _shared_client()
    if client is None:
        return True, quiet_ms
    pipeline = client.pipeline(transaction=False)  # one round trip for both
    pipeline.set(_key(task), 1, nx=True, px=quiet_ms)
    pipeline.pttl(_key(task))
    try:
        claimed, left_ms = pipeline.execute()
    except redis.RedisError:
        logger.warning("could not share the doorbell's quiet window; ringing anyway", exc_info=True)
        return True, 0
    return bool(claimed), quiet_ms if claimed else max(left_ms, 0)


def _key(task: str) -> str:
    return f"custos:doorbell:{task}"


def _shared_client() -> redis.Redis | None:
    url = current_app.conf.broker_url or ""
    return _client(url) if url.startswith(("redis://", "rediss://")) else None


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
