"""The pages' permission matrices, run against the API: same personas, resources and states.

The case table is the page matrix itself (``tests/investigations/test_case_matrix.py``),
translated cell by cell: a page's 302 after a POST is the API's success code, ``login`` is
401, and 403/404/409 stay what they are, with the same ledger rule (a 403 records exactly one
``access.denied``; 401, 404 and 409 record nothing). The request matrix reuses the request
pages' expectations. Then every operation of the schema that takes an id is called on
objects the caller may not see: 404, always.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit import runs
from investigations import actions
from investigations.models import DataPullRequest, GrantStatus, QueryStatus
from tests.investigations.fixtures import JUSTIFICATION
from tests.investigations.matrix import FIXTURE_OF, check_ledger, events_since, ledger_mark
from tests.investigations.test_case_matrix import CELLS, build_case, evidence_file
from tests.investigations.test_requests_views import PERSONAS, STATES, _expected, _in_state
from tests.stepup import enrol

from .conftest import token_client

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

# page -> (method, path below /api/v1/cases/{id}/, body, success code). Pages that only show a
# form (edit, members, close, reject as GET) have no API twin; their POST rows cover them.
CASE_OPERATIONS = {
    "detail": ("get", "", None, 200),
    "edit_post": ("patch", "", {"title": "Revised title"}, 200),
    "member_add": ("post", "members/", {"username": "other_investigator"}, 201),
    "member_remove": ("delete", "members/{member}/", None, 204),
    "note_add": ("post", "notes/", {"text": "Interviewed the finance team."}, 201),
    "close_post": ("post", "close/", {"summary": "Closed: no leak."}, 200),
    "approve": ("post", "approve/", None, 200),
    "reject_post": ("post", "reject/", {"reason": "Not a legitimate investigation."}, 200),
    "resubmit": ("post", "resubmit/", None, 200),
    "hold": ("post", "hold/", None, 200),
    "resume": ("post", "resume/", None, 200),
    "timeline": ("get", "timeline/", None, 200),
    "classify": ("post", "classification/", {"priority": "high", "tags": ["leak", "press"]}, 200),
    "report": ("post", "reports/", None, 201),
    "legal_hold_post": ("post", "legal-hold/", {"hold": True, "reason": "Litigation expected."}, 200),
    # A callable body is sent as multipart/form-data (a fresh file for each call).
    "evidence_add": ("post", "evidence/", lambda: {"file": evidence_file(), "title": "Interview notes"}, 201),
}
API_CELLS = {key: expected for key, expected in CELLS.items() if key[0] in CASE_OPERATIONS}


def api_expected(page_expected: str, success: int) -> str:
    return {"302": str(success), "login": "401"}.get(page_expected, page_expected)


def _client(cast: dict, persona: str):
    from rest_framework.test import APIClient

    return token_client(cast[persona]) if FIXTURE_OF[persona] else APIClient()


def test_every_case_page_has_an_api_twin_or_a_post_row():
    pages = {page for page, _ in CELLS}
    form_only = {"edit", "members", "close", "reject", "legal_hold"}
    assert pages - form_only == set(CASE_OPERATIONS)


@pytest.mark.parametrize(("page", "state"), sorted(API_CELLS), ids=lambda value: value)
def test_case_matrix_on_the_api(cast, page, state):
    method, suffix, body, success = CASE_OPERATIONS[page]
    failures = []
    for persona, page_expected in API_CELLS[(page, state)].items():
        expected = api_expected(page_expected, success)
        case = build_case(state, cast)
        client = _client(cast, persona)
        url = f"/api/v1/cases/{case.pk}/" + suffix.format(member=cast["member"].pk)
        mark = ledger_mark()
        if callable(body):
            response = getattr(client, method)(url, body(), format="multipart")
        else:
            response = getattr(client, method)(url, body, format="json")
        got = str(response.status_code)
        if got != expected:
            failures.append(f"{persona}: expected {expected}, got {got} {response.content[:200]!r}")
        elif problem := check_ledger(page_expected, events_since(mark)):
            failures.append(f"{persona}: {problem}")
        elif expected in ("403", "404", "409", "401"):
            assert set(response.json()) >= {"detail", "code"}, response.json()
    assert not failures, f"{page} on a {state} case:\n" + "\n".join(failures)


# --- requests: the request pages' expectations, one fresh request per operation --------------

REQUEST_OPERATIONS = {
    # operation of the page matrix -> (method, suffix, body, API code when the page allows it)
    "detail": ("get", "", None, 200),
    "edit": ("patch", "", {"justification": JUSTIFICATION + " Revised."}, 200),
    "withdraw": ("post", "withdraw/", {"reason": "Not needed."}, 200),
    "decide": ("post", "decisions/", {"decision": "return", "reason": "Say which report."}, 201),
    "submit": ("post", "submit/", None, 200),
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_request_matrix_on_the_api(state, persona, request, open_case, lead, senior_reviewer, store):
    user = request.getfixturevalue(persona)
    client = token_client(user)
    failures = []
    for operation, (method, suffix, body, success) in REQUEST_OPERATIONS.items():
        data_request = _in_state(state, open_case, lead, senior_reviewer)
        expected = _expected(persona, state, operation)
        expected = success if expected in (200, 302) else expected
        response = getattr(client, method)(f"/api/v1/requests/{data_request.pk}/{suffix}", body, format="json")
        if response.status_code != expected:
            failures.append(f"{operation}: expected {expected}, got {response.status_code} {response.content[:200]!r}")
        if expected == 404:
            text = response.content.decode()
            assert data_request.case.reference not in text and JUSTIFICATION not in text, (
                f"request {data_request.pk} leaked"
            )
        if expected >= 400:
            assert DataPullRequest.objects.get(pk=data_request.pk).status == state, f"{operation} changed the request"
    assert not failures, f"{persona} on a {state} request:\n" + "\n".join(failures)


# --- grants and queries ----------------------------------------------------------------------

# fmt: off
GRANT_MATRIX = [
    # persona            detail revoke query   (the grant: lead's, on lead's case with member on the team)
    ("lead",               200,  200,   202),
    ("member",             200,  403,   403),   # on the team, not a grantee: refused and recorded
    ("second_reviewer",    200,  200,   404),   # the approving reviewer
    ("reviewer",           200,  200,   404),   # approved the case, so sees it
    ("senior_reviewer",    404,  404,   404),
    ("other_investigator", 404,  404,   404),
    ("auditor",            404,  404,   404),
    ("superuser",          404,  404,   404),
    ("admin_user",         404,  404,   404),
    ("outsider",           404,  404,   404),
]
# fmt: on


@pytest.mark.parametrize(("persona", "detail", "revoke", "query"), GRANT_MATRIX)
def test_grant_matrix_on_the_api(active_grant, request, persona, detail, revoke, query):
    user = request.getfixturevalue(persona)
    enrol(user)  # revoking needs a recent second factor: every persona's token has one here
    client = token_client(user)
    url = f"/api/v1/grants/{active_grant.pk}/"
    assert client.get(url).status_code == detail
    response = client.post(url + "queries/", {"category": "ip_logs"}, format="json")
    assert response.status_code == query, response.content
    if query == 403:
        assert response.json()["code"] == "not_grantee"
        assert active_grant.queries.get(pk=response.json()["query"]).status == QueryStatus.DENIED
    response = client.post(url + "revoke/", {"reason": "Stop."}, format="json")
    assert response.status_code == revoke, response.content
    active_grant.refresh_from_db()
    expected_status = GrantStatus.REVOKED if revoke == 200 else GrantStatus.ACTIVE
    assert active_grant.status == expected_status


@pytest.mark.parametrize(
    ("persona", "record", "rows"),
    [
        ("lead", 200, 200),  # grantee who ran it
        ("auditor", 200, 403),  # sees the record, never the rows
        ("member", 404, 404),
        ("reviewer", 404, 404),
        ("second_reviewer", 404, 404),
        ("other_investigator", 404, 404),
        ("superuser", 404, 404),
        ("outsider", 404, 404),
    ],
)
def test_query_matrix_on_the_api(succeeded_query, request, persona, record, rows):
    client = token_client(request.getfixturevalue(persona))
    assert client.get(f"/api/v1/queries/{succeeded_query.pk}/").status_code == record
    assert client.get(f"/api/v1/queries/{succeeded_query.pk}/results/").status_code == rows


# --- invisible is 404 on every endpoint ---------------------------------------------------------


def _operations_with_ids() -> list[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if "{id}" in path
    ]


def test_the_schema_has_the_resources():
    paths = {path for _, path in _operations_with_ids()}
    for resource in ("cases", "requests", "grants", "queries", "tasks", "notes", "evidence"):
        assert f"/api/v1/{resource}/{{id}}/" in paths


@pytest.mark.parametrize("persona", ["other_investigator", "outsider", "superuser", "admin_user", "senior_reviewer"])
def test_invisible_objects_are_404_on_every_endpoint(
    persona, request, succeeded_query, member, evidence_store, auditor
):
    grant = succeeded_query.grant
    task = actions.task_create(actor=grant.case.lead, case=grant.case, title="Confirm the leak")
    note = actions.case_add_note(actor=grant.case.lead, case=grant.case, text="Interviewed the finance team.")
    document = actions.evidence_upload(actor=grant.case.lead, case=grant.case, upload=evidence_file())
    report = actions.case_report_produce(actor=grant.case.lead, case=grant.case)
    ids = {
        "evidence": document.pk,
        "case-reports": report.pk,
        "cases": grant.case_id,
        "requests": grant.request_id,
        "grants": grant.pk,
        "queries": succeeded_query.pk,
        "tasks": task.pk,
        "notes": note.pk,
        "audit": runs.run_start(actor=auditor).pk,  # a verification run: auditors only
    }
    user = request.getfixturevalue(persona)
    client = token_client(user)
    # The one documented exception: a legal reviewer deciding a case another reviewer decided
    # within the day lost a race for a case they saw in the queue: 409, what and when, not who.
    lost_race = {"/api/v1/cases/{id}/approve/", "/api/v1/cases/{id}/reject/"} if user.is_reviewer else set()
    mark = ledger_mark()
    leaks = []
    for method, path in _operations_with_ids():
        resource = path.split("/")[3]
        url = path.replace("{id}", str(ids[resource])).replace("{user_id}", str(member.pk))
        response = client.generic(method, url, "{}", content_type="application/json")
        if path in lost_race:
            detail = response.json().get("detail", "")
            if response.status_code != 409 or "by another legal reviewer" not in detail:
                leaks.append(f"{method} {url}: {response.status_code} {detail!r}, not the lost race's 409")
            continue
        if response.status_code != 404:
            leaks.append(f"{method} {url}: {response.status_code} (id {ids[resource]} leaked)")
        elif grant.case.reference in response.content.decode():
            leaks.append(f"{method} {url}: the case reference is in the 404 body")
    assert not leaks, "\n".join(leaks)
    assert events_since(mark) == [], "a 404 must record nothing"
    assert grant.status == GrantStatus.ACTIVE


@pytest.mark.parametrize("bad_id", ["999999", "0", "-1", "abc", "1e3", "99999999999999999999"])
def test_ids_that_do_not_exist_are_404(lead, bad_id):
    client = token_client(lead)
    for resource in ("cases", "requests", "grants", "queries", "tasks", "notes", "evidence"):
        response = client.get(f"/api/v1/{resource}/{bad_id}/")
        assert response.status_code == 404 and response.json() == {"detail": "Not found.", "code": "not_found"}


def test_lists_show_only_what_the_caller_may_see(other_investigator, active_grant):
    client = token_client(other_investigator)
    for resource in ("cases", "requests", "grants"):
        body = client.get(f"/api/v1/{resource}/").json()
        assert body == {"next": None, "previous": None, "results": []}, f"{resource} leaked to an outsider of the case"


def test_review_queue_is_for_reviewers(submitted_request, second_reviewer, lead, auditor):
    response = token_client(second_reviewer).get("/api/v1/reviews/")
    assert response.status_code == 200 and [item["id"] for item in response.json()] == [submitted_request.pk]
    assert response.json()[0]["approval_count"] == 0
    assert token_client(lead).get("/api/v1/reviews/").status_code == 403
    assert token_client(auditor).get("/api/v1/reviews/").status_code == 403


def test_unauthenticated_is_401_everywhere(active_grant):
    from rest_framework.test import APIClient

    client = APIClient()
    for method, path in _operations_with_ids():
        url = path.replace("{id}", "1").replace("{user_id}", "1")
        assert client.generic(method, url).status_code == 401, f"{method} {url}"
    for url in ("/api/v1/cases/", "/api/v1/me/", "/api/v1/audit/events/", reverse("api-schema")):
        response = client.get(url)
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token", url


# --- step-up: the endpoints that need a recent second factor ----------------------------------


def _pending_case(lead):
    return actions.case_open(
        actor=lead, title="Expense fraud", allegation="Claims twice.", case_type="misconduct", purpose="Check claims."
    )


def _held_case(case, reviewer):
    actions.case_legal_hold_set(actor=reviewer, case=case, reason="Litigation expected.")
    return case


# operation -> (the caller who may act, build the object, path, body, success, "did it happen?")
STEP_UP_OPERATIONS = {
    ("POST", "/api/v1/cases/{id}/approve/"): (
        "reviewer",
        lambda f: _pending_case(f("lead")),
        None,
        200,
        lambda case: case.__class__.objects.get(pk=case.pk).status == "open",
    ),
    ("POST", "/api/v1/cases/{id}/reject/"): (
        "reviewer",
        lambda f: _pending_case(f("lead")),
        {"reason": "Not a legitimate investigation."},
        200,
        lambda case: case.__class__.objects.get(pk=case.pk).status == "rejected",
    ),
    ("POST", "/api/v1/requests/{id}/decisions/"): (
        "second_reviewer",
        lambda f: f("submitted_request"),
        {"decision": "approve", "reason": "Proportionate."},
        201,
        lambda data_request: DataPullRequest.objects.get(pk=data_request.pk).status == "approved",
    ),
    ("POST", "/api/v1/grants/{id}/revoke/"): (
        "second_reviewer",
        lambda f: f("active_grant"),
        {"reason": "Stop."},
        200,
        lambda grant: grant.__class__.objects.get(pk=grant.pk).status == GrantStatus.REVOKED,
    ),
    ("POST", "/api/v1/cases/{id}/legal-hold/"): (  # lifting only: placing a hold needs no check
        "reviewer",
        lambda f: _held_case(f("open_case"), f("reviewer")),
        {"hold": False, "reason": "The claim was settled."},
        200,
        lambda case: case.__class__.objects.get(pk=case.pk).legal_hold_lift_by_id is not None,
    ),
}


def test_every_step_up_operation_of_the_schema_is_in_the_table():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    marked = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "step_up_required" in operation.get("responses", {}).get("403", {}).get("description", "")
    }
    assert marked == set(STEP_UP_OPERATIONS)


@pytest.mark.parametrize("operation", sorted(STEP_UP_OPERATIONS), ids=" ".join)
@pytest.mark.parametrize("token", ["without_otp", "stale", "fresh", "stepped_up"])
def test_step_up_matrix_on_the_api(request, store, settings, operation, token):
    """The caller who may act: a token without a second factor, or with one older than the window,
    is refused with 403 ``step_up_required`` and nothing changes (nothing recorded but the refusal's
    absence); a token issued with a code, or stepped up, acts."""
    from accounts.models import TokenSecondFactor
    from tests.stepup import unused_code

    persona, build, body, success, happened = STEP_UP_OPERATIONS[operation]
    target = build(request.getfixturevalue)
    user = request.getfixturevalue(persona)
    client = token_client(user, otp="" if token in ("without_otp", "stepped_up") else None)
    if token == "stale":
        TokenSecondFactor.objects.filter(token__user=user).update(
            checked_at=timezone.now() - timedelta(minutes=settings.CUSTOS_STEP_UP_MINUTES, seconds=1)
        )
    if token == "stepped_up":
        assert client.post("/api/v1/auth/step-up/", {"otp": unused_code(user)}, format="json").status_code == 200
    mark = ledger_mark()
    response = client.post(operation[1].replace("{id}", str(target.pk)), body, format="json")
    if token in ("without_otp", "stale"):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "step_up_required"
        assert not happened(target), f"{operation} acted without a recent second factor"
        assert events_since(mark) == []
    else:
        assert response.status_code == success, response.content
        assert happened(target)
