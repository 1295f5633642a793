"""The request, review and grant pages: the permission matrix, leaks, errors kept on the page,
query counts on lists."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from investigations import actions
from investigations.models import DataPullRequest, Grant, GrantStatus, RequestStatus
from tests.stepup import stepped_up

from .fixtures import JUSTIFICATION, file_request

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

STATES = ["draft", "submitted", "approved", "rejected", "returned", "withdrawn", "lapsed"]
PERSONAS = [
    "lead",
    "member",
    "other_investigator",
    "reviewer",
    "second_reviewer",
    "senior_reviewer",
    "auditor",
    "superuser",
    "admin_user",
    "outsider",
]


def _in_state(state, case, lead, decider):
    """A request by ``lead`` in ``state``, every step through the actions; ``decider`` decides."""
    request = file_request(case, lead)
    if state in ("draft",):
        return request
    if state == "withdrawn":
        return actions.request_withdraw(actor=lead, request=request)
    request = actions.request_submit(actor=lead, request=request)
    outcomes = {"approved": ("approve", ""), "rejected": ("reject", "No."), "returned": ("return", "Fix it.")}
    if state in outcomes:
        outcome, reason = outcomes[state]
        actions.request_decide(actor=decider, request=request, outcome=outcome, reason=reason)
    if state == "lapsed":
        actions.request_lapse(request=request, now=timezone.now() + timedelta(days=30))
    request.refresh_from_db()
    assert request.status == state
    return request


def _visible(persona, state) -> bool:
    if persona in ("lead", "member"):
        return True
    if persona == "second_reviewer":  # a legal reviewer who has not decided: sees what awaits decision
        return state == "submitted"
    if persona == "reviewer":  # approved the case: sees what was sent to legal on it
        return state not in ("draft", "withdrawn")
    if persona == "senior_reviewer":  # the reviewer who decided
        return state in ("submitted", "approved", "rejected", "returned")
    return False


def _expected(persona, state, operation) -> int:
    if not _visible(persona, state):
        return 404
    editable = state in ("draft", "returned")
    if operation == "detail":
        return 200
    if operation in ("edit", "submit", "withdraw"):
        if persona != "lead":
            return 403
        if not editable:
            return 409
        return 302 if operation == "submit" else 200
    if operation == "decide":
        if persona in ("lead", "member"):
            return 403
        return 200 if state == "submitted" else 409
    raise AssertionError(operation)


OPERATIONS = {
    "detail": ("get", "investigations:request_detail"),
    "edit": ("get", "investigations:request_edit"),
    "withdraw": ("get", "investigations:request_withdraw"),
    "decide": ("get", "investigations:request_decide"),
    "submit": ("post", "investigations:request_submit"),  # last: it moves the request on
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_request_matrix(state, persona, request, open_case, lead, senior_reviewer, store, client):
    data_request = _in_state(state, open_case, lead, senior_reviewer)
    user = request.getfixturevalue(persona)
    client.force_login(user)
    for operation, (method, name) in OPERATIONS.items():
        response = getattr(client, method)(reverse(name, args=[data_request.pk]))
        expected = _expected(persona, state, operation)
        assert response.status_code == expected, f"{persona} {operation} on {state}: {response.status_code}"
        if expected == 404:
            page = response.content.decode()
            assert data_request.case.reference not in page and JUSTIFICATION not in page, (
                f"request {data_request.pk} leaked"
            )
    data_request.refresh_from_db()
    assert data_request.status in (state, "submitted")  # only the requester's submit moves it


def test_inactive_user_sees_nothing(submitted_request, lead, client, admin_user):
    actions.user_deactivate(actor=admin_user, user=lead)
    client.force_login(lead)
    response = client.get(reverse("investigations:request_detail", args=[submitted_request.pk]))
    assert response.status_code in (302, 404)  # logged out by deactivation, or nothing visible


@pytest.mark.parametrize(
    "persona, expected",
    [
        ("lead", 200),
        ("member", 200),
        ("other_investigator", 404),
        ("reviewer", 403),  # approved the case, so sees it; not on the team
        ("senior_reviewer", 404),
        ("auditor", 404),
        ("superuser", 404),
        ("outsider", 404),
    ],
)
def test_who_can_file(open_case, request, client, persona, expected):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("investigations:request_create", args=[open_case.pk])).status_code == expected


def test_a_reviewer_who_sees_the_case_still_cannot_file(submitted_request, second_reviewer, client):
    client.force_login(second_reviewer)
    url = reverse("investigations:request_create", args=[submitted_request.case_id])
    assert client.get(url).status_code == 403


def test_decide_refused_with_a_clear_message(submitted_request, member, client):
    client.force_login(member)
    response = client.post(
        reverse("investigations:request_decide", args=[submitted_request.pk]), {"outcome": "approve"}
    )
    assert response.status_code == 403
    assert "on this case&#x27;s team" in response.content.decode()
    submitted_request.refresh_from_db()
    assert submitted_request.status == RequestStatus.SUBMITTED


@pytest.mark.parametrize(
    "persona, detail, revoke",
    [
        ("lead", 200, 200),
        ("member", 200, 403),
        ("second_reviewer", 200, 200),  # the approving reviewer
        ("reviewer", 200, 200),  # a legal reviewer who sees the case (approved it)
        ("senior_reviewer", 404, 404),  # a legal reviewer who does not see the case
        ("other_investigator", 404, 404),
        ("auditor", 404, 404),
        ("superuser", 404, 404),
        ("admin_user", 404, 404),
        ("outsider", 404, 404),
    ],
)
def test_grant_matrix(active_grant, request, client, persona, detail, revoke):
    stepped_up(client, request.getfixturevalue(persona))  # revoking needs a recent second factor
    assert client.get(reverse("investigations:grant_detail", args=[active_grant.pk])).status_code == detail
    assert client.get(reverse("investigations:grant_revoke", args=[active_grant.pk])).status_code == revoke
    response = client.post(reverse("investigations:grant_revoke", args=[active_grant.pk]), {"reason": "Stop."})
    active_grant.refresh_from_db()
    if revoke == 200:
        assert response.status_code == 302 and active_grant.status == GrantStatus.REVOKED
    else:
        assert response.status_code == revoke and active_grant.status == GrantStatus.ACTIVE


def test_revoking_twice_answers_409(active_grant, lead, client):
    stepped_up(client, lead)
    url = reverse("investigations:grant_revoke", args=[active_grant.pk])
    assert client.post(url, {"reason": "Done."}).status_code == 302
    assert client.post(url, {"reason": "Again."}).status_code == 409


def test_revoke_needs_a_reason_on_the_page(active_grant, lead, client):
    client.force_login(lead)
    response = client.post(reverse("investigations:grant_revoke", args=[active_grant.pk]), {"reason": ""})
    assert response.status_code == 200 and "field-error" in response.content.decode()
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.ACTIVE


def test_ids_that_do_not_exist_answer_404(lead, client):
    client.force_login(lead)
    for name in ("request_detail", "request_decide", "grant_detail", "grant_revoke"):
        assert client.get(reverse(f"investigations:{name}", args=[999_999])).status_code == 404


# --- pages ---------------------------------------------------------------------------------


def _form(**overrides):
    today = timezone.now().date()
    data = {
        "subjects": "1\n2, 3",
        "categories": ["ip_logs", "profile"],
        "window_start": (today - timedelta(days=10)).isoformat(),
        "window_end": today.isoformat(),
        "justification": JUSTIFICATION,
        "legal_basis": "internal_policy",
        "legal_basis_other": "",
        "duration_hours": "24",
    }
    data.update(overrides)
    return data


def test_file_a_request_from_the_page(open_case, lead, store, client):
    client.force_login(lead)
    response = client.post(reverse("investigations:request_create", args=[open_case.pk]), _form())
    data_request = DataPullRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "investigations:request_detail", args=[data_request.pk]
    )
    assert data_request.subjects == [1, 2, 3] and data_request.status == RequestStatus.DRAFT
    page = client.get(response["Location"]).content.decode()
    assert "Submit to legal" in page and "Edit" in page


def test_unknown_subject_shown_next_to_the_field_and_values_kept(open_case, lead, store, client):
    client.force_login(lead)
    response = client.post(
        reverse("investigations:request_create", args=[open_case.pk]),
        _form(subjects="1\nnobody_at_all", justification=JUSTIFICATION + " Extra words kept."),
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_subjects_error"' in page and "nobody_at_all" in page
    assert "Extra words kept." in page
    assert not DataPullRequest.objects.exists()


def test_ten_thousand_subjects_on_the_page(open_case, lead, store, client):
    client.force_login(lead)
    subjects = "\n".join(str(n) for n in range(1, 10_001))
    response = client.post(reverse("investigations:request_create", args=[open_case.pk]), _form(subjects=subjects))
    assert response.status_code == 200 and "At most 100 subjects" in response.content.decode()
    assert not DataPullRequest.objects.exists()


def test_window_too_long_on_the_page(open_case, lead, store, client):
    client.force_login(lead)
    start = (timezone.now().date() - timedelta(days=400)).isoformat()
    response = client.post(reverse("investigations:request_create", args=[open_case.pk]), _form(window_start=start))
    assert 'id="id_window_end_error"' in response.content.decode()
    assert not DataPullRequest.objects.exists()


def test_edit_submit_withdraw_through_pages(draft_request, lead, client):
    client.force_login(lead)
    edit = reverse("investigations:request_edit", args=[draft_request.pk])
    assert "1\n2" in client.get(edit).content.decode()
    assert client.post(edit, _form(subjects="4")).status_code == 302
    draft_request.refresh_from_db()
    assert draft_request.subjects == [4]
    assert client.get(reverse("investigations:request_submit", args=[draft_request.pk])).status_code == 405
    assert client.post(reverse("investigations:request_submit", args=[draft_request.pk])).status_code == 302
    draft_request.refresh_from_db()
    assert draft_request.status == RequestStatus.SUBMITTED
    assert client.post(edit, _form(subjects="5")).status_code == 409
    draft_request.refresh_from_db()
    assert draft_request.subjects == [4]


def test_decision_page_shows_requested_and_approved_side_by_side(protected_request, reviewer, client):
    client.force_login(reviewer)
    page = client.get(reverse("investigations:request_decide", args=[protected_request.pk])).content.decode()
    assert "Requested" in page and "Approved" in page
    assert "Oversight has been notified" in page
    assert "two approvals by two different reviewers, at least one of them a senior legal reviewer" in page


def test_decision_page_approves_and_issues_the_grant(submitted_request, reviewer, member, client):
    client.force_login(reviewer)
    url = reverse("investigations:request_decide", args=[submitted_request.pk])
    response = client.post(url, {"outcome": "approve", "grantees": [member.pk]})
    assert response.status_code == 302
    grant = Grant.objects.get(request=submitted_request)
    assert set(grant.grantees.values_list("username", flat=True)) == {"lead", "member"}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"subjects": ["1", "2", "3"]}, "subjects"),
        ({"categories": ["ip_logs", "profile", "location"]}, "categories"),
        ({"duration_hours": "48"}, "duration_hours"),
    ],
)
def test_decision_page_refuses_widening_with_a_field_error(submitted_request, reviewer, client, change, field):
    client.force_login(reviewer)
    data = {
        "outcome": "approve_narrowed",
        "reason": "Narrowed.",
        "subjects": ["1", "2"],
        "categories": ["ip_logs", "profile"],
        "window_start": submitted_request.window_start.isoformat(),
        "window_end": submitted_request.window_end.isoformat(),
        "duration_hours": "24",
        **change,
    }
    response = client.post(reverse("investigations:request_decide", args=[submitted_request.pk]), data)
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in response.content.decode()
    submitted_request.refresh_from_db()
    assert submitted_request.status == RequestStatus.SUBMITTED and not Grant.objects.exists()


def test_protected_request_detail_says_what_is_still_needed_to_legal_only(
    protected_request, senior_reviewer, reviewer, lead, client
):
    actions.request_decide(actor=senior_reviewer, request=protected_request, outcome="approve")
    url = reverse("investigations:request_detail", args=[protected_request.pk])
    client.force_login(reviewer)
    assert "Still needed before a grant exists: one more approval by a different reviewer" in (
        client.get(url).content.decode()
    )
    client.force_login(lead)  # the team would learn that the protected policy applies
    page = client.get(url).content.decode()
    assert "Still needed" not in page and "protected" not in page.lower().replace("protected-subject policy", "")


def test_review_queue_shows_case_summary_and_never_user_data(submitted_request, reviewer, client, userdata_guard):
    from userdata.models import Account

    client.force_login(reviewer)
    page = client.get(reverse("investigations:review_queue")).content.decode()
    assert submitted_request.case.reference in page and "2 subjects" in page
    with userdata_guard.allow():  # the test reads the accounts to prove the page does not show them
        accounts = list(Account.objects.using("userdata").filter(pk__in=[1, 2]))
    for account in accounts:
        assert account.handle not in page and account.email not in page


def test_review_queue_is_for_reviewers(lead, client):
    client.force_login(lead)
    assert client.get(reverse("investigations:review_queue")).status_code == 403


def test_grant_detail_includes_the_query_panel_only_when_it_exists(active_grant, lead, client, settings, tmp_path):
    client.force_login(lead)
    url = reverse("investigations:grant_detail", args=[active_grant.pk])
    assert client.get(url).status_code == 200
    panel = tmp_path / "investigations" / "_grant_queries.html"
    panel.parent.mkdir()
    panel.write_text("QUERY PANEL for {{ grant.pk }} can_query={{ can_query }}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    assert f"QUERY PANEL for {active_grant.pk} can_query=True" in client.get(url).content.decode()


# --- query counts --------------------------------------------------------------------------------


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_review_queue_query_count_does_not_grow(open_case, lead, reviewer, store, client):
    client.force_login(reviewer)
    url = reverse("investigations:review_queue")
    for n in range(2):
        actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=(str(n + 1),)))
    few = _count(client, url)
    for n in range(2, 12):
        actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=(str(n + 1),)))
    assert _count(client, url) == few


def test_grant_list_query_count_does_not_grow(open_case, lead, second_reviewer, store, client):
    def grant(n):
        request = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=(str(n),)))
        actions.request_decide(actor=second_reviewer, request=request, outcome="approve")

    client.force_login(lead)
    url = reverse("investigations:grant_list")
    grant(1)
    grant(2)
    few = _count(client, url)
    for n in range(3, 13):
        grant(n)
    page = client.get(url).content.decode()
    assert page.count("Grant ") >= 12
    assert _count(client, url) == few


def _queue_rows(page: str) -> list[str]:
    import re

    return re.findall(r"Request (\d+)</a>", page)


def test_review_queue_pages_hold_25_in_submission_order(open_case, lead, reviewer, store, client):
    import html
    import re

    client.force_login(reviewer)
    url = reverse("investigations:review_queue")
    submitted = [
        actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=(str(n % 40 + 1),))).pk
        for n in range(27)
    ]
    first = client.get(url).content.decode()
    following = re.search(r'<a href="(\?after=[^"]+)" rel="next">', first).group(1)
    second = client.get(url + html.unescape(following)).content.decode()
    assert _queue_rows(first) == [str(pk) for pk in submitted[:25]]
    assert _queue_rows(second) == [str(pk) for pk in submitted[25:]]
    assert 'rel="prev"' not in first
    assert 'rel="prev"' in second and 'rel="next"' not in second
    back = re.search(r'<a href="(\?before=[^"]+)" rel="prev">', second).group(1)
    assert _queue_rows(client.get(url + html.unescape(back)).content.decode()) == _queue_rows(first)
    for bad in ("x", "", "1e3", "0", "-1", "99999999999999999999"):  # old page numbers, nonsense: the first page
        assert _queue_rows(client.get(url, {"page": bad}).content.decode()) == _queue_rows(first)
        assert _queue_rows(client.get(url, {"after": bad}).content.decode()) == _queue_rows(first)
    assert _count(client, url) == _count(client, url + html.unescape(following))


def test_review_queue_shows_approvals_so_far(protected_request, reviewer, second_reviewer, client):
    url = reverse("investigations:review_queue")
    client.force_login(second_reviewer)
    assert "0 of 2 (one senior)" in client.get(url).content.decode()
    actions.request_decide(actor=reviewer, request=protected_request, outcome="approve")
    assert "1 of 2 (one senior)" in client.get(url).content.decode()
