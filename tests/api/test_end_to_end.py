"""The whole path through the API with a real worker: token, case, approvals, query, results, audit.

Marked ``worker``; on CI it runs on PostgreSQL and Redis (and on the embedded default with the
filesystem broker).
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from custos_testing.worker import CeleryWorker, wait_for
from tests.investigations.fixtures import JUSTIFICATION, window

from .conftest import token_client

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]


def login(username: str) -> APIClient:
    """A token from ``POST /api/v1/auth/token/``: password, and a code for a user with a second factor."""
    return token_client(User.objects.get(username=username))


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json()


def poll(client: APIClient, url: str, done, what: str, worker: CeleryWorker) -> dict:
    """GET ``url`` until ``done(body)`` holds (the worker has finished); the body."""

    def finished() -> dict | None:
        body = ok(client.get(url))
        return body if done(body) else None

    return wait_for(finished, what, worker)


def test_token_case_approval_request_query_results_and_audit(
    celery_worker_process, lead, reviewer, second_reviewer, auditor, store
):
    investigator = login("lead")
    case = ok(investigator.post("/api/v1/cases/", {
        "title": "Leak of the board minutes",
        "allegation": "Board minutes reached a journalist before publication.",
        "case_type": "fraud",  # a leak case would escalate ip_logs of non-employees
        "purpose": "Establish which internal account sent the minutes out.",
    }, format="json"), 201)  # fmt: skip
    assert case["status"] == "pending_approval"

    legal = login("reviewer")
    assert ok(legal.post(f"/api/v1/cases/{case['id']}/approve/"))["status"] == "open"

    start, end = window(360)
    data_request = ok(investigator.post("/api/v1/requests/", {
        "case": case["id"], "subjects": ["1", "2"], "categories": ["ip_logs"],
        "window_start": start.isoformat(), "window_end": end.isoformat(),
        "justification": JUSTIFICATION, "legal_basis": "internal_policy", "duration_hours": 24,
    }, format="json"), 201)  # fmt: skip
    assert ok(investigator.post(f"/api/v1/requests/{data_request['id']}/submit/"))["status"] == "submitted"

    second = login("second_reviewer")
    assert [item["id"] for item in ok(second.get("/api/v1/reviews/"))] == [data_request["id"]]
    decided = ok(
        second.post(f"/api/v1/requests/{data_request['id']}/decisions/", {"decision": "approve"}, format="json"), 201
    )
    grant = ok(investigator.get(f"/api/v1/grants/{decided['grant']}/"))
    assert grant["status"] == "active" and grant["subjects"] == [1, 2]

    query = ok(investigator.post(f"/api/v1/grants/{grant['id']}/queries/", {"category": "ip_logs"}, format="json"), 202)
    query = poll(
        investigator,
        f"/api/v1/queries/{query['id']}/",
        lambda body: body["status"] not in ("queued", "running"),
        "the query's end",
        celery_worker_process,
    )
    assert query["status"] == "succeeded" and query["results_available"], query

    rows = ok(investigator.get(f"/api/v1/queries/{query['id']}/results/"))
    assert rows["count"] == query["row_count"] > 0 and rows["digest"] == query["digest"]

    audit = login("auditor")
    seen, url = [], f"/api/v1/audit/events/?case={case['reference']}"
    while url:
        page = ok(audit.get(url))
        seen += [event["action"] for event in page["results"]]
        url = page["next"]
    for action in (
        "case.opened",
        "case.approved",
        "request.created",
        "request.submitted",
        "decision.recorded",
        "grant.issued",
        "query.requested",
        "query.completed",
        "results.viewed",
    ):
        assert action in seen, f"{action} missing from the case's events"
    # Verification runs in the worker: POST queues it, its run tells the outcome.
    run = ok(audit.post("/api/v1/audit/verify/"), 202)
    run = poll(
        audit,
        f"/api/v1/audit/verify/{run['id']}/",
        lambda body: body["status"] == "done",
        "the verification run",
        celery_worker_process,
    )
    verification = run["outcome"]
    assert verification["ok"] is True and verification["first_bad_seq"] is None and verification["source"] == "API"
    assert verification["checked"] == verification["head_seq"] > len(seen)
    assert ok(audit.get("/api/v1/audit/verify/"))["last"] == verification
