"""Bad input gets field errors and changes nothing; server-owned fields are refused; limits hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from audit import runs
from audit.events import Action
from audit.models import AuditEvent, ChainHead, VerificationRun
from investigations.api.throttles import QuerySubmitThrottle
from investigations.models import Case, DataPullRequest, DataQuery, Decision, Grant, GrantStatus, RequestStatus
from tests.investigations.fixtures import JUSTIFICATION, window
from tests.investigations.matrix import events_since, ledger_mark
from tests.stepup import enrol

from .conftest import token_client

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

CASE_BODY = {
    "title": "Expense fraud in procurement",
    "allegation": "Invoices were approved twice.",
    "case_type": "fraud",
    "purpose": "Establish who approved the duplicate invoices.",
}


def request_body(case_id: int, **changes) -> dict:
    start, end = window()
    body = {
        "case": case_id,
        "subjects": ["1", "2"],
        "categories": ["ip_logs"],
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "justification": JUSTIFICATION,
        "legal_basis": "internal_policy",
        "duration_hours": 24,
    }
    return body | changes


def snapshot() -> tuple:
    """Everything an API call could have changed, in one comparable value."""
    return (
        list(Case.objects.order_by("pk").values()),
        list(DataPullRequest.objects.order_by("pk").values()),
        list(Decision.objects.order_by("pk").values_list("pk", flat=True)),
        list(Grant.objects.order_by("pk").values("pk", "status", "expires_at", "subjects", "categories")),
        list(DataQuery.objects.order_by("pk").values_list("pk", flat=True)),
    )


# --- mass assignment: every server-owned field, on every write -----------------------------

CASE_OWNED = {
    "id": 99,
    "reference": "INV-1999-0001",
    "status": "open",
    "lead": 1,
    "team": [1],
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
    "decided_by": 1,
    "decided_at": "2020-01-01T00:00:00Z",
    "rejection_reason": "x",
    "closed_at": "2020-01-01T00:00:00Z",
    "closure_summary": "x",
    "notes": [],
    "flags": {"can_approve": True},
}
REQUEST_OWNED = {
    "id": 99,
    "status": "approved",
    "requested_by": 1,
    "approved_by": 1,
    "is_protected": False,
    "protected_categories": [],
    "review_round": 5,
    "submitted_at": "2020-01-01T00:00:00Z",
    "decided_at": "2020-01-01T00:00:00Z",
    "created_at": "2020-01-01T00:00:00Z",
    "grantees": [1],
    "expires_at": "2099-01-01T00:00:00Z",
    "scope": {"subjects": [1]},
    "subject_inputs": [],
    "decisions": [],
    "grant": 1,
}
DECISION_OWNED = {
    "reviewer": 1,
    "reviewer_was_senior": True,
    "review_round": 9,
    "outcome": "approve",
    "status": "approved",
    "expires_at": "2099-01-01T00:00:00Z",
    "starts_at": "2020-01-01T00:00:00Z",
    "grant": 1,
}
GRANT_OWNED = {
    "status": "active",
    "expires_at": "2099-01-01T00:00:00Z",
    "subjects": [1, 2, 3],
    "categories": ["contacts"],
    "grantees": [1],
    "revoked_by": 1,
    "window_start": "2000-01-01",
}
QUERY_OWNED = {
    "status": "succeeded",
    "user": 1,
    "grant": 1,
    "row_count": 0,
    "digest": "0" * 64,
    "denial_reason": "",
    "attempts": 0,
    "truncated": False,
    "finished_at": "2020-01-01T00:00:00Z",
}


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()


@pytest.mark.parametrize("field", sorted(CASE_OWNED))
def test_case_server_owned_fields_are_refused(field, lead, reviewer):
    client = token_client(lead)
    before = snapshot()
    _refused(client.post("/api/v1/cases/", CASE_BODY | {field: CASE_OWNED[field]}, format="json"), field)
    assert snapshot() == before
    case = Case.objects.create(reference="INV-2026-9999", lead=lead, **CASE_BODY)
    from guardian.shortcuts import assign_perm

    assign_perm("view_case", lead, case)
    assign_perm("change_case", lead, case)
    before = snapshot()
    body = {"title": "New", field: CASE_OWNED[field]}
    _refused(client.patch(f"/api/v1/cases/{case.pk}/", body, format="json"), field)
    assert snapshot() == before


@pytest.mark.parametrize("field", sorted(REQUEST_OWNED))
def test_request_server_owned_fields_are_refused(field, lead, open_case, draft_request):
    client = token_client(lead)
    before, mark = snapshot(), ledger_mark()
    body = request_body(open_case.pk, **{field: REQUEST_OWNED[field]})
    _refused(client.post("/api/v1/requests/", body, format="json"), field)
    patch = {"justification": JUSTIFICATION + " More.", field: REQUEST_OWNED[field]}
    _refused(client.patch(f"/api/v1/requests/{draft_request.pk}/", patch, format="json"), field)
    assert snapshot() == before and events_since(mark) == []


def test_a_request_never_moves_to_another_case(lead, draft_request, open_case):
    response = token_client(lead).patch(f"/api/v1/requests/{draft_request.pk}/", {"case": 12345}, format="json")
    _refused(response, "case")


@pytest.mark.parametrize("field", sorted(DECISION_OWNED))
def test_decision_server_owned_fields_are_refused(field, second_reviewer, submitted_request):
    before = snapshot()
    body = {"decision": "approve", field: DECISION_OWNED[field]}
    response = token_client(second_reviewer).post(
        f"/api/v1/requests/{submitted_request.pk}/decisions/", body, format="json"
    )
    _refused(response, field)
    assert snapshot() == before


@pytest.mark.parametrize("field", sorted(GRANT_OWNED))
def test_grant_server_owned_fields_are_refused(field, lead, active_grant):
    before = snapshot()
    body = {"reason": "Done.", field: GRANT_OWNED[field]}
    _refused(token_client(lead).post(f"/api/v1/grants/{active_grant.pk}/revoke/", body, format="json"), field)
    assert snapshot() == before


@pytest.mark.parametrize("field", sorted(QUERY_OWNED))
def test_query_server_owned_fields_are_refused(field, lead, active_grant):
    client = token_client(lead)  # obtaining a token is a login, on the ledger: before the mark
    before, mark = snapshot(), ledger_mark()
    body = {"category": "ip_logs", field: QUERY_OWNED[field]}
    _refused(client.post(f"/api/v1/grants/{active_grant.pk}/queries/", body, format="json"), field)
    assert snapshot() == before and events_since(mark) == []


# --- bad input: field errors, nothing changed, and the page agrees ------------------------------

BAD_REQUESTS = {
    "future window": ({"window_end": (timezone.now().date() + timedelta(days=3)).isoformat()}, "window_end"),
    "short justification": ({"justification": "Because."}, "justification"),
    "unknown category": ({"categories": ["messages"]}, "categories"),
    "unknown subject": ({"subjects": ["no-such-handle-zz"]}, "subjects"),
    "zero hours": ({"duration_hours": 0}, "duration_hours"),
    "too long": ({"duration_hours": 10_000}, "duration_hours"),
    "impossible date": ({"window_start": "2025-02-30"}, "window_start"),
    "other basis, undescribed": ({"legal_basis": "other"}, "legal_basis_other"),
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_request_input_is_a_field_error_on_the_api_and_the_page(name, lead, open_case, store, client):
    changes, field = BAD_REQUESTS[name]
    before = snapshot()
    response = token_client(lead).post("/api/v1/requests/", request_body(open_case.pk, **changes), format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert snapshot() == before
    # The same values through the page: refused on the same field.
    client.force_login(lead)
    form_data = request_body(open_case.pk, **changes)
    form_data["subjects"] = "\n".join(form_data.pop("subjects"))
    form_data.pop("case")
    page = client.post(reverse("investigations:request_create", args=[open_case.pk]), form_data)
    assert page.status_code == 200 and field in page.context["form"].errors
    assert snapshot() == before


def test_a_good_request_is_filed_and_can_be_edited(lead, open_case, store):
    client = token_client(lead)
    response = client.post("/api/v1/requests/", request_body(open_case.pk, subjects=["1", "2"]), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "draft" and created["requested_by"]["username"] == "lead"
    assert created["flags"] == {"can_edit": True, "can_submit": True, "can_withdraw": True, "can_decide": False}
    response = client.patch(f"/api/v1/requests/{created['id']}/", {"duration_hours": 12}, format="json")
    assert response.status_code == 200 and response.json()["duration_hours"] == 12
    assert response.json()["subjects"] == created["subjects"]


def test_case_input_errors(lead):
    client = token_client(lead)
    before = snapshot()
    response = client.post("/api/v1/cases/", {**CASE_BODY, "title": "x" * 201, "case_type": "gossip"}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"title", "case_type"}
    response = client.post("/api/v1/cases/", {"title": "Only a title"}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"allegation", "case_type", "purpose"}
    assert client.post("/api/v1/cases/", ["not", "an", "object"], format="json").json() == {
        "non_field_errors": ["Send a JSON object."]
    }
    response = client.generic("POST", "/api/v1/cases/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["non_field_errors"][0]
    assert snapshot() == before
    response = client.post("/api/v1/cases/", CASE_BODY, format="json")
    assert response.status_code == 201 and response.json()["status"] == "pending_approval"
    assert response.json()["lead"]["username"] == "lead"


def test_only_investigators_open_cases(reviewer):
    response = token_client(reviewer).post("/api/v1/cases/", CASE_BODY, format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert not Case.objects.exists()


def test_an_oversized_body_is_413_and_changes_nothing(lead, settings):
    settings.API_MAX_BODY_BYTES = 2048
    before = snapshot()
    response = token_client(lead).post("/api/v1/cases/", CASE_BODY | {"allegation": "x" * 5000}, format="json")
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert snapshot() == before


def test_an_oversized_field_is_a_field_error(lead):
    response = token_client(lead).post("/api/v1/cases/", CASE_BODY | {"allegation": "x" * 10_001}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["allegation"]
    assert not Case.objects.exists()


# --- decisions ---------------------------------------------------------------------------------


def test_approval_can_narrow_but_never_widen(second_reviewer, submitted_request):
    client = token_client(second_reviewer)
    url = f"/api/v1/requests/{submitted_request.pk}/decisions/"
    before = snapshot()
    for body, field in (
        ({"decision": "approve", "reason": "Less.", "subjects": [1, 2, 3]}, "subjects"),
        ({"decision": "approve", "reason": "Less.", "categories": ["ip_logs", "contacts"]}, "categories"),
        ({"decision": "approve", "reason": "Less.", "duration_hours": 48}, "duration_hours"),
        ({"decision": "approve", "subjects": [1]}, "reason"),  # a narrowed approval says why
        ({"decision": "reject"}, "reason"),
        ({"decision": "reject", "reason": "No.", "subjects": [1]}, "subjects"),
        ({"decision": "maybe"}, "decision"),
        ({"decision": "approve", "grantees": [987654]}, "grantees"),
    ):
        response = client.post(url, body, format="json")
        assert response.status_code == 400 and field in response.json(), (body, response.json())
    assert snapshot() == before
    body = {"decision": "approve", "reason": "Account 1 only.", "subjects": [1], "duration_hours": 6}
    response = client.post(url, body, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["decision"]["outcome"] == "approve_narrowed" and body["request"]["status"] == "approved"
    grant = Grant.objects.get(pk=body["grant"])
    assert grant.subjects == [1] and grant.expires_at - grant.starts_at == timedelta(hours=6)
    assert client.post(url, {"decision": "approve"}, format="json").status_code == 409


def test_a_protected_subject_needs_a_second_senior_approval(protected_request, second_reviewer, senior_reviewer):
    url = f"/api/v1/requests/{protected_request.pk}/decisions/"
    first = token_client(second_reviewer).post(url, {"decision": "approve"}, format="json").json()
    assert first["grant"] is None and first["request"]["status"] == "submitted" and first["still_needed"]
    second = token_client(senior_reviewer).post(url, {"decision": "approve"}, format="json").json()
    assert second["grant"] is not None and second["request"]["status"] == "approved"


def test_the_requester_cannot_decide_their_own_request(lead, submitted_request):
    response = token_client(lead).post(
        f"/api/v1/requests/{submitted_request.pk}/decisions/", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 403
    assert DataPullRequest.objects.get(pk=submitted_request.pk).status == RequestStatus.SUBMITTED


# --- queries, results, throttling ----------------------------------------------------------------


def test_a_refused_query_is_403_with_its_code_and_recorded(lead, active_grant):
    client = token_client(lead)
    url = f"/api/v1/grants/{active_grant.pk}/queries/"
    mark = ledger_mark()
    start = (active_grant.window_start - timedelta(days=5)).isoformat()
    for body, code in (
        ({"category": "contacts"}, "out_of_scope_category"),
        ({"category": "ip_logs", "subjects": [1, 7]}, "out_of_scope_subject"),
        ({"category": "ip_logs", "window_start": start}, "out_of_scope_window"),
    ):
        response = client.post(url, body, format="json")
        assert response.status_code == 403 and response.json()["code"] == code, response.json()
        assert DataQuery.objects.get(pk=response.json()["query"]).denial_reason == code
    assert events_since(mark) == [Action.QUERY_DENIED] * 3


def test_a_query_on_an_expired_grant_is_refused_whatever_the_expiry_task_did(lead, active_grant):
    Grant.objects.filter(pk=active_grant.pk).update(
        starts_at=F("starts_at") - timedelta(days=2), expires_at=timezone.now() - timedelta(hours=1)
    )
    client = token_client(lead)
    assert client.get(f"/api/v1/grants/{active_grant.pk}/").json()["status"] == GrantStatus.EXPIRED
    response = client.post(f"/api/v1/grants/{active_grant.pk}/queries/", {"category": "ip_logs"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "grant_expired"


def test_malformed_query_input_records_nothing(lead, active_grant):
    client = token_client(lead)
    mark, before = ledger_mark(), snapshot()
    for body, field in (
        ({"category": "ip_logs", "window_start": "yesterday"}, "window_start"),
        ({"category": "nope"}, "category"),
        ({"category": "ip_logs", "page_size": 5000}, "page_size"),
        ({"category": "ip_logs", "subjects": ["x"]}, "subjects"),
    ):
        response = client.post(f"/api/v1/grants/{active_grant.pk}/queries/", body, format="json")
        assert response.status_code == 400 and field in response.json(), response.json()
    assert events_since(mark) == [] and snapshot() == before


def test_query_submission_is_throttled_per_user(lead, active_grant, monkeypatch):
    monkeypatch.setattr(QuerySubmitThrottle, "THROTTLE_RATES", {"query_submit": "2/minute"})
    client = token_client(lead)
    url = f"/api/v1/grants/{active_grant.pk}/queries/"
    codes = [client.post(url, {"category": "ip_logs"}, format="json").status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    response = client.post(url, {"category": "ip_logs"}, format="json")
    assert response.json()["code"] == "throttled" and int(response["Retry-After"]) > 0
    assert DataQuery.objects.count() == 2


def test_results_are_paginated_and_each_read_recorded(lead, succeeded_query):
    client = token_client(lead)
    url = f"/api/v1/queries/{succeeded_query.pk}/results/"
    detail = client.get(f"/api/v1/queries/{succeeded_query.pk}/").json()
    assert detail["results_available"] is True and detail["row_count"] == succeeded_query.row_count
    mark = ledger_mark()
    body = client.get(url).json()
    assert events_since(mark) == [Action.RESULTS_VIEWED]
    assert body["count"] == succeeded_query.row_count and body["digest"] == succeeded_query.digest
    assert len(body["results"]) == min(succeeded_query.page_size, succeeded_query.row_count)
    mark = ledger_mark()
    assert client.get(url + f"?page={body['num_pages'] + 1}").status_code == 404
    assert client.get(url + "?page=abc").status_code == 400
    assert events_since(mark) == []


def test_results_of_a_revoked_grant_are_withheld(lead, succeeded_query, reviewer):
    revoke = f"/api/v1/grants/{succeeded_query.grant_id}/revoke/"
    assert token_client(reviewer).post(revoke, {"reason": "Stop."}, format="json").status_code == 200
    response = token_client(lead).get(f"/api/v1/queries/{succeeded_query.pk}/results/")
    assert response.status_code == 403 and response.json()["code"] == "results_unavailable"


# --- state conflicts ----------------------------------------------------------------------------


def test_transitions_not_allowed_from_the_state_are_409(lead, active_grant, submitted_request):
    enrol(lead)  # revoking needs a recent second factor
    client = token_client(lead)
    revoke = f"/api/v1/grants/{active_grant.pk}/revoke/"
    assert client.post(revoke, {"reason": "Done."}, format="json").status_code == 200
    response = client.post(revoke, {"reason": "Again."}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"
    assert client.post(f"/api/v1/requests/{submitted_request.pk}/submit/").status_code == 409
    assert client.post(f"/api/v1/cases/{submitted_request.case_id}/approve/").status_code == 403


def test_revoke_needs_a_reason(lead, active_grant):
    response = token_client(lead).post(f"/api/v1/grants/{active_grant.pk}/revoke/", {"reason": ""}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["reason"]
    assert Grant.objects.get(pk=active_grant.pk).status == GrantStatus.ACTIVE


def test_team_changes_through_the_api(lead, member, other_investigator, open_case, active_grant):
    client = token_client(lead)
    url = f"/api/v1/cases/{open_case.pk}/members/"
    assert client.post(url, {"username": "nobody-here"}, format="json").json() == {
        "username": ["No user is called nobody-here."]
    }
    response = client.post(url, {"username": "member"}, format="json")
    assert response.status_code == 400 and "already on the team" in response.json()["username"][0]
    assert client.post(url, {"username": "other_investigator"}, format="json").status_code == 201
    assert client.delete(f"{url}{lead.pk}/").status_code == 400  # the lead stays
    assert client.delete(f"{url}{other_investigator.pk}/").status_code == 204
    assert client.delete(f"{url}{other_investigator.pk}/").status_code == 404


# --- the audit trail ---------------------------------------------------------------------------


def test_audit_events_are_filtered_paged_by_cursor_and_each_read_recorded(auditor, lead, active_grant):
    client = token_client(auditor)
    reference = active_grant.case.reference
    total = AuditEvent.objects.filter(case_reference=reference).count()
    seen, url = [], f"/api/v1/audit/events/?case={reference}&page_size=3"
    while url:
        mark = ledger_mark()
        body = client.get(url).json()
        assert events_since(mark) == [Action.AUDIT_VIEWED]
        seen += [event["seq"] for event in body["results"]]
        url = body["next"]
    assert len(seen) == total == len(set(seen)) and seen == sorted(seen, reverse=True)
    viewed = AuditEvent.objects.filter(action=Action.AUDIT_VIEWED).last()
    assert viewed.actor_username == "auditor" and viewed.details["filters"] == {"case": reference}
    body = client.get("/api/v1/audit/events/", {"action": "grant.issued", "actor": "second_reviewer"}).json()
    assert [event["action"] for event in body["results"]] == ["grant.issued"]
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/audit/events/", {"since": future}).json()["results"] == []
    response = client.get("/api/v1/audit/events/", {"action": "not.an.action", "since": "soon"})
    assert response.status_code == 400 and set(response.json()) == {"action", "since"}
    # an offset PostgreSQL cannot take (schemathesis found a 500 here)
    response = client.get(
        "/api/v1/audit/events/", {"since": "1667-07-09T14:40:16+19:15", "until": "2026-01-01T00:00-16:00"}
    )
    assert response.status_code == 400 and set(response.json()) == {"since", "until"}


def test_audit_endpoints_are_404_to_everyone_but_auditors(lead, reviewer, superuser, admin_user):
    for user in (lead, reviewer, superuser, admin_user):
        client = token_client(user)
        mark = ledger_mark()
        assert client.get("/api/v1/audit/events/").status_code == 404
        assert client.get("/api/v1/audit/verify/").status_code == 404
        assert client.post("/api/v1/audit/verify/").status_code == 404
        assert events_since(mark) == []
    assert not VerificationRun.objects.exists()


def _verify(client) -> dict:
    """POST queues a run (202, its address in Location); the worker's step runs here; its outcome."""
    response = client.post("/api/v1/audit/verify/")
    assert response.status_code == 202 and response["Location"] == f"/api/v1/audit/verify/{response.json()['id']}/"
    assert response.json()["status"] == "queued" and response.json()["outcome"] is None
    runs.run_execute(response.json()["id"], "api")
    run = client.get(response["Location"]).json()
    assert run["status"] == "done"
    return run["outcome"]


def test_verify_runs_in_the_worker_reports_a_broken_chain_and_alerts(auditor, active_grant):
    client = token_client(auditor)
    assert client.get("/api/v1/audit/verify/").json() == {"last": None, "current": None}
    body = _verify(client)
    assert body["ok"] is True and body["checked"] == body["head_seq"] and body["first_bad_seq"] is None
    assert AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED, actor_username="auditor").count() == 1
    assert client.get("/api/v1/audit/verify/").json()["last"] == body
    head = ChainHead.objects.get(pk=1)
    ChainHead.objects.filter(pk=1).update(seq=head.seq + 3)  # the head claims events that are missing
    body = _verify(client)
    assert body["ok"] is False and body["first_bad_seq"] == head.seq + 1 and "truncated" in body["reason"]
    assert mail.outbox and "FAILED" in mail.outbox[-1].subject


def test_one_verification_at_a_time_and_run_ids_are_checked(auditor):
    client = token_client(auditor)
    first = client.post("/api/v1/audit/verify/").json()
    assert client.post("/api/v1/audit/verify/").json()["id"] == first["id"]  # joins the one under way
    assert client.get("/api/v1/audit/verify/").json()["current"]["id"] == first["id"]
    for bad in ("0", "9" * 40, "-1", "x", str(first["id"] + 1)):
        assert client.get(f"/api/v1/audit/verify/{bad}/").status_code == 404


def test_errors_inside_lists_are_flat_messages(lead, open_case):
    body = request_body(open_case.pk, categories=[{}], subjects=[])
    response = token_client(lead).post("/api/v1/requests/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "subjects": ["This list may not be empty."],
        "categories": ['item 0: "{}" is not a valid choice.'],
    }


def test_a_request_names_its_case(lead, open_case, other_investigator):
    body = request_body(open_case.pk)
    body.pop("case")
    response = token_client(lead).post("/api/v1/requests/", body, format="json")
    assert response.status_code == 400 and response.json() == {"case": ["This field is required."]}
    response = token_client(other_investigator).post("/api/v1/requests/", request_body(open_case.pk), format="json")
    assert response.status_code == 404  # a case the caller may not see is not there
    assert not DataPullRequest.objects.exists()
