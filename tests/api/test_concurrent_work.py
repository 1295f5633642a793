"""Many people deciding, filing and submitting at once while the oversight scan runs.

Real PostgreSQL, real connections (one per thread), the real API with knox tokens. The
old code deadlocked here (decisions took the request, case and user rows and then the
chain head; the scan and the requester's other transactions took them the other way
round) and answered 500. Bounded: a fixed amount of work, every wait has a timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connections

from audit.verification import verify
from investigations import actions
from investigations.actions import oversight
from investigations.models import Decision, Grant, RequestStatus
from tests.investigations.fixtures import JUSTIFICATION, file_request, window

from .conftest import token_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=["default", "userdata"], transaction=True)]

PREFILED = 8  # submitted requests waiting for a decision when the run starts
FILED_PER_TOKEN = 3  # requests each investigator token files and submits during the run
WAIT = 120


def _body(case_id: int) -> dict:
    start, end = window()
    return {
        "case": case_id,
        "subjects": ["1", "2"],
        "categories": ["ip_logs"],
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "justification": JUSTIFICATION,
        "legal_basis": "internal_policy",
        "duration_hours": 24,
    }


class Run:
    """The responses of every thread, and the errors a thread raised."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, str, int, bytes]] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.filing_done = threading.Event()

    def call(self, client, method: str, path: str, data: dict | None = None):
        response = getattr(client, method)(path, data, format="json")
        with self.lock:
            self.responses.append((method, path, response.status_code, response.content[:300]))
        return response

    def thread(self, work: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # reported by the test
                with self.lock:
                    self.errors.append(error)
            finally:
                connections.close_all()

        return threading.Thread(target=run)


def _file_and_submit(run: Run, client, case_id: int) -> Callable[[], None]:
    def work() -> None:
        for _ in range(FILED_PER_TOKEN):
            created = run.call(client, "post", "/api/v1/requests/", _body(case_id))
            if created.status_code == 201:
                run.call(client, "post", f"/api/v1/requests/{created.json()['id']}/submit/")

    return work


def _decide_everything(run: Run, client) -> Callable[[], None]:
    def work() -> None:
        for _ in range(200):  # a bound, never reached: the queue empties first
            filing_over = run.filing_done.is_set()
            queue = run.call(client, "get", "/api/v1/reviews/")
            ids = [item["id"] for item in queue.json()] if queue.status_code == 200 else []
            for pk in ids:
                run.call(client, "post", f"/api/v1/requests/{pk}/decisions/", {"decision": "approve"})
            if filing_over and not ids:
                return

    return work


def _scan_until(run: Run, stop: threading.Event) -> Callable[[], None]:
    def work() -> None:
        while not stop.is_set():
            oversight.alerts_scan()
        oversight.alerts_scan()

    return work


def test_concurrent_decisions_and_filings_with_the_scan_running(
    open_case, lead, member, reviewer, second_reviewer, senior_reviewer, store
):
    for number in range(PREFILED):
        author = lead if number % 2 else member
        actions.request_submit(actor=author, request=file_request(open_case, author))
    run = Run()
    stop_scan = threading.Event()
    filers = [
        run.thread(_file_and_submit(run, token_client(user), open_case.pk)) for user in (lead, lead, member)
    ]  # the lead on two tokens: the pattern that deadlocked
    deciders = [
        run.thread(_decide_everything(run, token_client(user))) for user in (reviewer, second_reviewer, senior_reviewer)
    ]
    scanner = run.thread(_scan_until(run, stop_scan))
    for thread in [scanner, *filers, *deciders]:
        thread.start()
    for thread in filers:
        thread.join(timeout=WAIT)
    run.filing_done.set()
    for thread in deciders:
        thread.join(timeout=WAIT)
    stop_scan.set()
    scanner.join(timeout=WAIT)
    assert not any(thread.is_alive() for thread in [scanner, *filers, *deciders])

    assert run.errors == []
    server_errors = [entry for entry in run.responses if entry[2] >= 500]
    assert server_errors == []
    decided = [entry for entry in run.responses if entry[1].endswith("/decisions/")]
    assert {entry[2] for entry in decided} <= {201, 409}, decided
    assert sum(entry[2] == 201 for entry in decided) == PREFILED + 3 * FILED_PER_TOKEN
    approved = list(open_case.requests.filter(status=RequestStatus.APPROVED))
    assert len(approved) == PREFILED + 3 * FILED_PER_TOKEN
    assert not open_case.requests.filter(status=RequestStatus.SUBMITTED).exists()
    for data_request in approved:
        assert Grant.objects.filter(request=data_request).count() == 1
        assert Decision.objects.filter(request=data_request).count() == 1
    result = verify()
    assert result.ok, result.summary()
