"""Lock order under concurrent work: no deadlock between object rows and the ledger head.

The documented order (docs/design.md, "Lock order") is: object rows first, locked with
``FOR NO KEY UPDATE`` and only the rows that change (``of=("self",)``), then the chain head.
These tests reproduce the deadlocks that a load test of the old code found, with real
PostgreSQL connections in threads, and wait on what the database says (a backend waiting
for a lock), not on sleeps.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.db import OperationalError, connection, connections, transaction
from django.db.models import F
from psycopg import errors

from accounts.roles import ALL_ROLES
from audit.ledger import GENESIS_HASH
from audit.models import ChainHead
from investigations import actions
from investigations.actions.locks import locked, retry_on_conflict
from investigations.models import CaseReferenceCounter, Decision, Grant

from .fixtures import file_request

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=["default", "userdata"], transaction=True)]

WAIT = 30  # seconds: an upper bound on every wait, never a synchronisation


@pytest.fixture(autouse=True)
def migrated_rows(transactional_db):
    """A transactional test flushes the tables, including rows that migrations made."""
    ChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})
    for role in ALL_ROLES:
        Group.objects.get_or_create(name=role)


def _wait_until_blocked(pid_box: list[int], done: threading.Event) -> None:
    """Return once the backend in ``pid_box`` waits for a lock (or its thread finished)."""
    deadline = time.monotonic() + WAIT
    with connection.cursor() as cursor:
        while time.monotonic() < deadline and not done.is_set():
            if pid_box:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid_box[0]])
                row = cursor.fetchone()
                if row and row[0] == "Lock":
                    return
            time.sleep(0.01)
    if not done.is_set():
        raise AssertionError("the other transaction never reached its lock wait")


def _in_thread(work, pid_box: list[int], done: threading.Event, results: dict) -> threading.Thread:
    def run() -> None:
        try:
            connection.ensure_connection()
            pid_box.append(connection.connection.info.backend_pid)
            results["value"] = work()
        except Exception as error:  # reported by the test
            results["error"] = error
        finally:
            done.set()
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_decision_does_not_deadlock_with_the_requesters_other_transaction(open_case, lead, reviewer, store, caplog):
    """Issue 21: one investigator on two tokens and one reviewer deadlocked.

    The requester's transaction holds the chain head and, at COMMIT, checks its deferred
    foreign key to the requester's user row; the reviewer's decision locked that user row
    (``select_related`` without ``of``) and waits for the head.
    """
    submitted = actions.request_submit(actor=lead, request=file_request(open_case, lead))
    pid_box: list[int] = []
    done = threading.Event()
    results: dict = {}
    caplog.set_level(logging.WARNING, logger="investigations.actions.retry")
    with transaction.atomic():
        file_request(open_case, lead)  # holds the head; FKs to lead and the case are checked at COMMIT
        decide = _in_thread(
            lambda: actions.request_decide(actor=reviewer, request=submitted, outcome="approve", reason=""),
            pid_box,
            done,
            results,
        )
        _wait_until_blocked(pid_box, done)
    decide.join(timeout=WAIT)
    assert not decide.is_alive()
    assert "error" not in results, results
    assert isinstance(results["value"], Decision)
    assert Grant.objects.filter(request=submitted).count() == 1
    assert not [record for record in caplog.records if "retry" in record.getMessage()], "a deadlock was retried"


def test_an_action_chosen_as_deadlock_victim_runs_again_once_and_only_its_commit_callbacks_survive(caplog):
    """Two actions lock two rows in opposite orders: PostgreSQL aborts one, the decorator reruns it."""
    first, second = (CaseReferenceCounter.objects.create(year=year) for year in (1901, 1902))
    barrier = threading.Barrier(2, timeout=WAIT)
    attempts: list[str] = []
    committed: list[str] = []

    @retry_on_conflict
    def bump(name: str, rows: tuple[CaseReferenceCounter, CaseReferenceCounter]) -> None:
        with transaction.atomic():
            attempts.append(name)
            transaction.on_commit(lambda: committed.append(name))
            locked(CaseReferenceCounter.objects).get(pk=rows[0].pk)
            if attempts.count(name) == 1:
                barrier.wait()  # both hold their first row: the second lock closes the cycle
            CaseReferenceCounter.objects.filter(pk__in=[row.pk for row in rows]).update(
                last_number=F("last_number") + 1
            )

    caplog.set_level(logging.WARNING, logger="investigations.actions.retry")
    results = [{}, {}]
    threads = [
        _in_thread(lambda: bump("a", (first, second)), [], threading.Event(), results[0]),
        _in_thread(lambda: bump("b", (second, first)), [], threading.Event(), results[1]),
    ]
    for thread in threads:
        thread.join(timeout=WAIT)
    assert not any(thread.is_alive() for thread in threads)
    assert [result.get("error") for result in results] == [None, None]
    # One is the victim and runs again; its rerun may meet the other's first attempt and
    # make that one a victim in turn. Never more than one rerun each.
    assert len(attempts) >= 3 and {attempts.count("a"), attempts.count("b")} <= {1, 2}
    assert sorted(committed) == ["a", "b"]  # the aborted attempt's callback was dropped
    assert list(CaseReferenceCounter.objects.filter(year__in=(1901, 1902)).values_list("last_number", flat=True)) == [
        2,
        2,
    ]
    assert any("retrying it once" in record.getMessage() for record in caplog.records)


def test_inside_a_callers_transaction_the_conflict_goes_to_the_caller():
    calls = []

    @retry_on_conflict
    def action() -> None:
        calls.append(1)
        raise OperationalError("deadlock detected") from errors.DeadlockDetected("deadlock detected")

    with pytest.raises(OperationalError), transaction.atomic():
        action()
    assert calls == [1]
    with pytest.raises(OperationalError):
        action()
    assert calls == [1, 1, 1]
