"""Concurrent appends never fork the chain or leave gaps (real PostgreSQL, real threads)."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection, connections, transaction

import audit
from audit import sealer
from audit.events import Action
from audit.ledger import GENESIS_HASH
from audit.models import AuditEvent
from audit.verification import verify

THREADS = 8
APPENDS = 500


def _append_many(thread: int, barrier: threading.Barrier, errors: list) -> None:
    try:
        barrier.wait()
        for number in range(APPENDS):
            with transaction.atomic():
                audit.record(action=Action.QUERY_COMPLETED, details={"thread": thread, "n": number})
    except Exception as error:  # reported by the test
        errors.append(error)
    finally:
        connections.close_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_contiguous_chain():
    barrier = threading.Barrier(THREADS)
    errors: list = []
    workers = [threading.Thread(target=_append_many, args=(n, barrier, errors)) for n in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    sealer.seal()
    chain = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
    assert [row[0] for row in chain] == list(range(1, THREADS * APPENDS + 1))
    assert chain[0][1] == GENESIS_HASH
    assert all(after[1] == before[2] for before, after in itertools.pairwise(chain))
    per_thread = AuditEvent.objects.filter(details__thread=3).count()
    assert per_thread == APPENDS
    result = verify()
    assert result.ok, result.summary()
    assert result.count == THREADS * APPENDS
    assert connection.vendor == "postgresql"
