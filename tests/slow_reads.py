"""Loaded only by a test worker that must be slow (``CeleryWorker(include=...)``): every read of
the user-data store waits two minutes first, inside the query's run, so that a test can kill the
worker while a query runs. The gateway itself knows nothing of it."""

import time

from investigations import gateway

DELAY_SECONDS = 120

_read_rows = gateway.read_rows


def _slow_read_rows(**kwargs):
    time.sleep(DELAY_SECONDS)
    return _read_rows(**kwargs)


gateway.read_rows = _slow_read_rows
