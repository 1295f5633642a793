"""Every case page and action, for every persona, in every case state: one table.

Cases are built through the actions; the open, on-hold and closed ones were approved (and
the rejected one rejected) by ``second_reviewer``, so ``reviewer`` sees only the pending
case; deciding one another reviewer decided (within the day) is a lost race: 409, not 404.
Each cell gets a fresh case, so a successful POST in one cell cannot change another.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from investigations import actions

from .matrix import FIXTURE_OF, check_ledger, events_since, ledger_mark, observed, parse

pytestmark = pytest.mark.django_db

# fmt: off
CASE_MATRIX = """
page           state             lead  member other reviewer auditor admin super anon  inactive
detail         pending_approval  200   200    404   200      404     404   404   login login
detail         rejected          200   200    404   404      404     404   404   login login
detail         open              200   200    404   404      404     404   404   login login
detail         on_hold           200   200    404   404      404     404   404   login login
detail         closed            200   200    404   404      404     404   404   login login
edit           pending_approval  200   403    404   403      404     404   404   login login
edit           rejected          200   403    404   404      404     404   404   login login
edit           open              409   403    404   404      404     404   404   login login
edit           on_hold           409   403    404   404      404     404   404   login login
edit           closed            403   403    404   404      404     404   404   login login
edit_post      pending_approval  302   403    404   403      404     404   404   login login
edit_post      rejected          302   403    404   404      404     404   404   login login
edit_post      open              409   403    404   404      404     404   404   login login
edit_post      on_hold           409   403    404   404      404     404   404   login login
edit_post      closed            403   403    404   404      404     404   404   login login
members        pending_approval  200   403    404   403      404     404   404   login login
members        rejected          200   403    404   404      404     404   404   login login
members        open              200   403    404   404      404     404   404   login login
members        on_hold           200   403    404   404      404     404   404   login login
members        closed            403   403    404   404      404     404   404   login login
member_add     pending_approval  302   403    404   403      404     404   404   login login
member_add     rejected          302   403    404   404      404     404   404   login login
member_add     open              302   403    404   404      404     404   404   login login
member_add     on_hold           302   403    404   404      404     404   404   login login
member_add     closed            403   403    404   404      404     404   404   login login
member_remove  pending_approval  302   403    404   403      404     404   404   login login
member_remove  rejected          302   403    404   404      404     404   404   login login
member_remove  open              302   403    404   404      404     404   404   login login
member_remove  on_hold           302   403    404   404      404     404   404   login login
member_remove  closed            403   403    404   404      404     404   404   login login
note_add       pending_approval  302   302    404   403      404     404   404   login login
note_add       rejected          302   302    404   404      404     404   404   login login
note_add       open              302   302    404   404      404     404   404   login login
note_add       on_hold           302   302    404   404      404     404   404   login login
note_add       closed            403   403    404   404      404     404   404   login login
close          pending_approval  409   403    404   403      404     404   404   login login
close          rejected          409   403    404   404      404     404   404   login login
close          open              200   403    404   404      404     404   404   login login
close          on_hold           200   403    404   404      404     404   404   login login
close          closed            403   403    404   404      404     404   404   login login
close_post     pending_approval  409   403    404   403      404     404   404   login login
close_post     rejected          409   403    404   404      404     404   404   login login
close_post     open              302   403    404   404      404     404   404   login login
close_post     on_hold           302   403    404   404      404     404   404   login login
close_post     closed            403   403    404   404      404     404   404   login login
approve        pending_approval  403   403    404   302      404     404   404   login login
approve        rejected          403   403    404   409      404     404   404   login login
approve        open              403   403    404   409      404     404   404   login login
approve        on_hold           403   403    404   409      404     404   404   login login
approve        closed            403   403    404   409      404     404   404   login login
reject         pending_approval  403   403    404   200      404     404   404   login login
reject         rejected          403   403    404   409      404     404   404   login login
reject         open              403   403    404   409      404     404   404   login login
reject         on_hold           403   403    404   409      404     404   404   login login
reject         closed            403   403    404   409      404     404   404   login login
reject_post    pending_approval  403   403    404   302      404     404   404   login login
reject_post    rejected          403   403    404   409      404     404   404   login login
reject_post    open              403   403    404   409      404     404   404   login login
reject_post    on_hold           403   403    404   409      404     404   404   login login
reject_post    closed            403   403    404   409      404     404   404   login login
resubmit       pending_approval  409   403    404   403      404     404   404   login login
resubmit       rejected          302   403    404   404      404     404   404   login login
resubmit       open              409   403    404   404      404     404   404   login login
resubmit       on_hold           409   403    404   404      404     404   404   login login
resubmit       closed            403   403    404   404      404     404   404   login login
hold           pending_approval  409   403    404   403      404     404   404   login login
hold           rejected          409   403    404   404      404     404   404   login login
hold           open              302   403    404   404      404     404   404   login login
hold           on_hold           409   403    404   404      404     404   404   login login
hold           closed            403   403    404   404      404     404   404   login login
resume         pending_approval  409   403    404   403      404     404   404   login login
resume         rejected          409   403    404   404      404     404   404   login login
resume         open              409   403    404   404      404     404   404   login login
resume         on_hold           302   403    404   404      404     404   404   login login
resume         closed            403   403    404   404      404     404   404   login login
timeline       pending_approval  200   200    404   200      404     404   404   login login
timeline       rejected          200   200    404   404      404     404   404   login login
timeline       open              200   200    404   404      404     404   404   login login
timeline       on_hold           200   200    404   404      404     404   404   login login
timeline       closed            200   200    404   404      404     404   404   login login
classify       pending_approval  302   403    404   403      404     404   404   login login
classify       rejected          409   403    404   404      404     404   404   login login
classify       open              302   403    404   404      404     404   404   login login
classify       on_hold           302   403    404   404      404     404   404   login login
classify       closed            403   403    404   404      404     404   404   login login
report         pending_approval  302   302    404   302      404     404   404   login login
report         rejected          302   302    404   404      404     404   404   login login
report         open              302   302    404   404      404     404   404   login login
report         on_hold           302   302    404   404      404     404   404   login login
report         closed            302   302    404   404      404     404   404   login login
legal_hold     pending_approval  403   403    404   200      404     404   404   login login
legal_hold     rejected          403   403    404   404      404     404   404   login login
legal_hold     open              403   403    404   404      404     404   404   login login
legal_hold     on_hold           403   403    404   404      404     404   404   login login
legal_hold     closed            403   403    404   404      404     404   404   login login
legal_hold_post pending_approval 403   403    404   302      404     404   404   login login
legal_hold_post rejected         403   403    404   404      404     404   404   login login
legal_hold_post open             403   403    404   404      404     404   404   login login
legal_hold_post on_hold          403   403    404   404      404     404   404   login login
legal_hold_post closed           403   403    404   404      404     404   404   login login
evidence_add   pending_approval  302   302    404   403      404     404   404   login login
evidence_add   rejected          302   302    404   404      404     404   404   login login
evidence_add   open              302   302    404   404      404     404   404   login login
evidence_add   on_hold           302   302    404   404      404     404   404   login login
evidence_add   closed            403   403    404   404      404     404   404   login login
"""

# Pages that are not about one case: the state column is "-".
GLOBAL_MATRIX = """
page          state  lead  member other reviewer auditor admin super anon  inactive
case_list     -      200   200    200   200      200     200   200   login login
case_create   -      200   200    200   403      403     403   403   login login
case_queue    -      403   403    403   200      403     403   403   login login
"""
# fmt: on

PERSONAS, CELLS = parse(CASE_MATRIX, key_columns=2)
_, GLOBAL_CELLS = parse(GLOBAL_MATRIX, key_columns=2)

CASE_FIELDS = {
    "title": "Leak of the Q3 report",
    "allegation": "The Q3 report reached a competitor before publication.",
    "case_type": "leak",
    "purpose": "Establish which internal account shared the report.",
}


def build_case(state: str, cast: dict):
    """A case in ``state``, led by ``lead`` with ``member`` on the team, built by the actions."""
    lead, decider = cast["lead"], cast["second_reviewer"]
    case = actions.case_open(actor=lead, team=[cast["member"]], **CASE_FIELDS)
    if state == "rejected":
        case = actions.case_reject(actor=decider, case=case, reason="The purpose does not justify an investigation.")
    if state in ("open", "on_hold", "closed"):
        case = actions.case_approve(actor=decider, case=case)
    if state == "on_hold":
        case = actions.case_hold(actor=lead, case=case)
    if state == "closed":
        case = actions.case_close(actor=lead, case=case, summary="No evidence of a leak was found.")
    return case


def request_for(page: str, case, cast: dict) -> tuple[str, str, dict]:
    """(method, url, data) for one page or action on ``case``."""
    url = lambda name: reverse(f"investigations:{name}", args=[case.pk])  # noqa: E731
    return {
        "detail": ("get", url("case_detail"), {}),
        "edit": ("get", url("case_edit"), {}),
        "edit_post": ("post", url("case_edit"), {**CASE_FIELDS, "title": "Revised title"}),
        "members": ("get", url("case_members"), {}),
        "member_add": ("post", url("case_members"), {"username": cast["other_investigator"].username}),
        "member_remove": ("post", url("case_member_remove"), {"user": cast["member"].pk}),
        "note_add": ("post", url("case_note_add"), {"text": "Interviewed the finance team."}),
        "close": ("get", url("case_close"), {}),
        "close_post": ("post", url("case_close"), {"summary": "Closed: no leak.", "confirm": "on"}),
        "approve": ("post", url("case_approve"), {}),
        "reject": ("get", url("case_reject"), {}),
        "reject_post": ("post", url("case_reject"), {"reason": "Not a legitimate investigation."}),
        "resubmit": ("post", url("case_resubmit"), {}),
        "hold": ("post", url("case_hold"), {}),
        "resume": ("post", url("case_resume"), {}),
        "timeline": ("get", url("case_timeline"), {}),
        "classify": ("post", url("case_classify"), {"priority": "high", "tags": "leak, press"}),
        "report": ("post", url("case_report_produce"), {}),
        "legal_hold": ("get", url("case_legal_hold"), {}),
        "legal_hold_post": ("post", url("case_legal_hold"), {"action": "place", "reason": "Litigation expected."}),
        "evidence_add": ("post", url("case_evidence_add"), {"file": evidence_file(), "title": "Interview notes"}),
    }[page]


def evidence_file():
    """A fresh text file to upload (a file object is read once)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("notes.txt", b"Interview notes: the report left through the shared drive.\n")


def _as(client, cast: dict, persona: str):
    client.logout()
    if FIXTURE_OF[persona]:
        client.force_login(cast[persona])
    return client


@pytest.mark.parametrize(("page", "state"), sorted(CELLS), ids=lambda value: value)
def test_case_matrix(client, cast, page, state):
    failures = []
    for persona, expected in CELLS[(page, state)].items():
        case = build_case(state, cast)
        method, url, data = request_for(page, case, cast)
        browser = _as(client, cast, persona)
        mark = ledger_mark()  # after logging in, which is audited too
        response = getattr(browser, method)(url, data)
        got = observed(response)
        if got != expected:
            failures.append(f"{persona}: expected {expected}, got {got}")
        elif problem := check_ledger(expected, events_since(mark)):
            failures.append(f"{persona}: {problem}")
    assert not failures, f"{page} on a {state} case:\n" + "\n".join(failures)


@pytest.mark.parametrize(("page", "state"), sorted(GLOBAL_CELLS), ids=lambda value: value)
def test_global_matrix(client, cast, page, state):
    failures = []
    for persona, expected in GLOBAL_CELLS[(page, state)].items():
        got = observed(_as(client, cast, persona).get(reverse(f"investigations:{page}")))
        if got != expected:
            failures.append(f"{persona}: expected {expected}, got {got}")
    assert not failures, f"{page}:\n" + "\n".join(failures)


def test_matrix_covers_every_case_url():
    """A new case URL must get a row in the matrix."""
    from investigations.urls import urlpatterns

    case_urls = {pattern.name for pattern in urlpatterns if str(pattern.pattern).startswith("cases/<int:pk>/")}
    covered = {
        "case_detail", "case_edit", "case_members", "case_member_remove", "case_note_add", "case_close",
        "case_approve", "case_reject", "case_resubmit", "case_hold", "case_resume", "case_classify", "case_timeline",
        "case_report_produce", "case_legal_hold",
        "case_evidence_add",
        "task_create",  # its rows are in test_tasks.py's TASK_MATRIX
    }  # fmt: skip
    assert case_urls == covered
    assert {page for page, _ in CELLS} >= {"detail", "edit", "members", "member_remove", "note_add", "close"}
