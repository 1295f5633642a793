"""The whole path through the API with a real worker: token, case, approvals, query, results, audit.

Marked ``worker``; on CI it runs on PostgreSQL and Redis (and on the embedded default with the
filesystem broker).
"""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.investigations.conftest import JUSTIFICATION, window

from .conftest import token_client

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]

WAIT_SECONDS = 120


def login(username: str) -> APIClient:
    """A token from ``POST /api/v1/auth/token/``: password, and a code for a user with a second factor."""
    return token_client(User.objects.get(username=username))


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json()


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
    deadline = time.monotonic() + WAIT_SECONDS
    while query["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            pytest.fail(f"the query did not finish; worker log:\n{celery_worker_process.log()[-4000:]}")
        time.sleep(0.25)
        query = ok(investigator.get(f"/api/v1/queries/{query['id']}/"))
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
    deadline = time.monotonic() + WAIT_SECONDS
    while run["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
        run = ok(audit.get(f"/api/v1/audit/verify/{run['id']}/"))
    verification = run["outcome"]
    assert verification["ok"] is True and verification["first_bad_seq"] is None and verification["source"] == "API"
    assert verification["checked"] == verification["head_seq"] > len(seen)
    assert ok(audit.get("/api/v1/audit/verify/"))["last"] == verification
