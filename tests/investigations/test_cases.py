"""Cases: status machine, team and permissions, closing, bad input, leaks and query counts."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import OuterRef
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from investigations import access, actions
from investigations.access import (
    cases_listed_for,
    cases_tested_per_row,
    cases_visible_to,
    get_case_for,
    object_perms,
)
from investigations.errors import InvalidTransition
from investigations.models import Case, CaseNote, CaseStatus, GrantStatus

from ..conftest import make_legacy_user, make_user
from .fixtures import file_request, open_case_for
from .matrix import events_since, ledger_mark

pytestmark = pytest.mark.django_db

FIELDS = {
    "title": "Expense fraud in sales",
    "allegation": "Duplicate expense claims over six months.",
    "case_type": "fraud",
    "purpose": "Establish whether the claims were deliberate.",
}


def one_row(user):
    """The cases ``access.case_seen_by`` lets through, each tested alone (how one row is fetched)."""
    return Case.objects.filter(access.case_seen_by(user, OuterRef("pk")))


def pending_case(lead, team=()):
    return actions.case_open(actor=lead, team=list(team), **FIELDS)


# --- status machine --------------------------------------------------------------------------


def test_reference_is_generated_unique_and_sequential(lead):
    first, second = pending_case(lead), pending_case(lead)
    assert first.reference.startswith("INV-") and len(first.reference) == len("INV-2026-0001")
    assert int(second.reference[-4:]) == int(first.reference[-4:]) + 1
    assert first.status == CaseStatus.PENDING_APPROVAL


def test_reference_never_reused_after_failed_open(lead):
    first = pending_case(lead)
    with pytest.raises(ValidationError):
        actions.case_open(actor=lead, **{**FIELDS, "case_type": "nonsense"})
    second = pending_case(lead)
    assert int(second.reference[-4:]) == int(first.reference[-4:]) + 1


def test_reject_resubmit_approve_hold_resume_close(lead, member, reviewer, second_reviewer):
    case = pending_case(lead, [member])
    case = actions.case_reject(actor=reviewer, case=case, reason="Purpose too vague.")
    assert case.status == CaseStatus.REJECTED and case.rejection_reason == "Purpose too vague."
    case = actions.case_update(actor=lead, case=case, purpose="Establish whether claims 1-14 were deliberate.")
    case = actions.case_resubmit(actor=lead, case=case)
    assert case.status == CaseStatus.PENDING_APPROVAL and case.decided_by is None
    case = actions.case_approve(actor=second_reviewer, case=case)
    case = actions.case_hold(actor=lead, case=case)
    assert case.status == CaseStatus.ON_HOLD
    case = actions.case_resume(actor=lead, case=case)
    case = actions.case_close(actor=lead, case=case, summary="Claims were deliberate; referred to HR.")
    assert case.status == CaseStatus.CLOSED and case.closed_at is not None
    ledger = list(AuditEvent.objects.filter(case_reference=case.reference).values_list("action", flat=True))
    for action in ["case.rejected", "case.updated", "case.resubmitted", "case.approved", "case.held"]:
        assert action in ledger
    assert [a for a in ledger if a in ("case.resumed", "case.closed")] == ["case.resumed", "case.closed"]


@pytest.mark.parametrize(
    ("state", "transition"),
    [
        ("pending", lambda lead, case: actions.case_hold(actor=lead, case=case)),
        ("pending", lambda lead, case: actions.case_resubmit(actor=lead, case=case)),
        ("pending", lambda lead, case: actions.case_close(actor=lead, case=case, summary="x")),
        ("open", lambda lead, case: actions.case_resume(actor=lead, case=case)),
        ("open", lambda lead, case: actions.case_update(actor=lead, case=case, title="Changed after approval")),
    ],
)
def test_wrong_state_is_refused_and_changes_nothing(lead, reviewer, state, transition):
    case = pending_case(lead) if state == "pending" else open_case_for(lead, reviewer)
    before, mark = Case.objects.get(pk=case.pk), ledger_mark()
    with pytest.raises(InvalidTransition):
        transition(lead, case)
    after = Case.objects.get(pk=case.pk)
    assert (after.status, after.title) == (before.status, before.title)
    assert events_since(mark) == []


def test_team_member_with_reviewer_role_cannot_approve_or_reject_own_case(lead):
    insider = make_legacy_user("insider", [Role.INVESTIGATOR, Role.LEGAL_REVIEWER])
    case = pending_case(lead, [insider])
    with pytest.raises(PermissionDenied):
        actions.case_approve(actor=insider, case=case)
    with pytest.raises(PermissionDenied):
        actions.case_reject(actor=insider, case=case, reason="no")
    assert Case.objects.get(pk=case.pk).status == CaseStatus.PENDING_APPROVAL
    assert AuditEvent.objects.filter(action=Action.ACCESS_DENIED, actor_username="insider").count() == 2


def test_reject_needs_a_reason(lead, reviewer):
    case = pending_case(lead)
    mark = ledger_mark()
    with pytest.raises(ValidationError) as error:
        actions.case_reject(actor=reviewer, case=case, reason="   ")
    assert "reason" in error.value.message_dict
    assert Case.objects.get(pk=case.pk).status == CaseStatus.PENDING_APPROVAL
    assert events_since(mark) == []


@pytest.mark.django_db(databases=["default", "userdata"])
def test_no_request_can_be_submitted_until_the_case_is_open(lead, reviewer, store):
    case = pending_case(lead)
    request = file_request(case, lead)
    with pytest.raises(InvalidTransition):
        actions.request_submit(actor=lead, request=request)
    actions.case_reject(actor=reviewer, case=case, reason="Not legitimate.")
    with pytest.raises(InvalidTransition):
        actions.request_submit(actor=lead, request=request)


def test_notes_are_append_only(open_case, member):
    note = actions.case_add_note(actor=member, case=open_case, text="Spoke to finance.")
    assert AuditEvent.objects.filter(action=Action.CASE_NOTE_ADDED, details__note_id=note.pk).exists()
    note.text = "rewritten"
    with pytest.raises(ValueError):
        note.save()
    assert CaseNote.objects.get(pk=note.pk).text == "Spoke to finance."


# --- team and permissions --------------------------------------------------------------------


def test_lead_and_member_permissions(open_case, lead, member):
    assert object_perms(lead, open_case) == {
        "view_case",
        "change_case",
        "manage_team",
        "close_case",
        "add_note",
        "file_request",
    }
    assert object_perms(member, open_case) == {"view_case", "add_note", "file_request"}


def test_adding_and_removing_a_member_changes_access_at_once(open_case, lead, other_investigator):
    with pytest.raises(Http404):
        get_case_for(other_investigator, open_case.pk)
    actions.case_add_member(actor=lead, case=open_case, user=other_investigator)
    assert get_case_for(other_investigator, open_case.pk, perm="add_note") == open_case
    actions.case_remove_member(actor=lead, case=open_case, user=other_investigator)
    with pytest.raises(Http404):
        get_case_for(other_investigator, open_case.pk)
    assert object_perms(other_investigator, open_case) == set()
    assert open_case not in cases_visible_to(other_investigator)


def test_removed_member_gets_404_on_the_page(open_case, lead, member, client):
    client.force_login(member)
    url = reverse("investigations:case_detail", args=[open_case.pk])
    assert client.get(url).status_code == 200
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    assert client.get(url).status_code == 404


def test_lead_cannot_be_removed(open_case, lead):
    with pytest.raises(ValidationError):
        actions.case_remove_member(actor=lead, case=open_case, user=lead)
    assert "manage_team" in object_perms(lead, open_case)


def test_member_cannot_manage_team(open_case, member, other_investigator):
    with pytest.raises(PermissionDenied):
        actions.case_add_member(actor=member, case=open_case, user=other_investigator)
    assert not open_case.is_on_team(other_investigator)
    assert AuditEvent.objects.filter(action=Action.ACCESS_DENIED, actor_username="member").count() == 1


@pytest.mark.parametrize("candidate", ["auditor", "inactive_user", "reviewer"])
def test_only_active_investigators_join(open_case, lead, candidate, request):
    user = request.getfixturevalue(candidate)
    mark = ledger_mark()
    with pytest.raises(ValidationError) as error:
        actions.case_add_member(actor=lead, case=open_case, user=user)
    assert "user" in error.value.message_dict
    assert not open_case.is_on_team(user)
    assert events_since(mark) == []


def test_add_member_page_shows_the_error_next_to_the_field(open_case, lead, auditor, client):
    client.force_login(lead)
    mark = ledger_mark()
    response = client.post(reverse("investigations:case_members", args=[open_case.pk]), {"username": "auditor"})
    assert response.status_code == 200
    assert "not an investigator" in response.context["form"].errors["username"][0]
    assert b'value="auditor"' in response.content
    assert events_since(mark) == []


# --- closing -----------------------------------------------------------------------------------


@pytest.mark.django_db(databases=["default", "userdata"])
def test_closing_revokes_grants_and_leaves_the_team_read_only(active_grant, lead, member):
    case = active_grant.case
    actions.case_close(actor=lead, case=case, summary="Done.")
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.REVOKED
    assert not active_grant.is_usable_by(lead)
    assert object_perms(lead, case) == {"view_case"}
    assert object_perms(member, case) == {"view_case"}
    assert get_case_for(member, case.pk) == case
    with pytest.raises(PermissionDenied):
        get_case_for(lead, case.pk, perm="add_note")


@pytest.mark.django_db(databases=["default", "userdata"])
def test_closing_without_summary_changes_nothing(active_grant, lead):
    mark = ledger_mark()
    with pytest.raises(ValidationError) as error:
        actions.case_close(actor=lead, case=active_grant.case, summary=" ")
    assert "summary" in error.value.message_dict
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.ACTIVE
    assert Case.objects.get(pk=active_grant.case_id).status == CaseStatus.OPEN
    assert events_since(mark) == []


def test_close_page_asks_for_confirmation_and_summary(open_case, lead, client):
    client.force_login(lead)
    url = reverse("investigations:case_close", args=[open_case.pk])
    assert b"revokes all of its active grants" in client.get(url).content
    response = client.post(url, {"summary": ""})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"summary", "confirm"}
    assert Case.objects.get(pk=open_case.pk).status == CaseStatus.OPEN


@pytest.mark.django_db(databases=["default", "userdata"])
def test_removing_sole_grantee_revokes_the_grant(open_case, lead, member, reviewer, second_reviewer, store):
    request = file_request(open_case, member)
    actions.request_submit(actor=member, request=request)
    actions.request_decide(actor=second_reviewer, request=request, outcome="approve")
    request.refresh_from_db()
    grant = request.grant
    assert grant.is_usable_by(member)
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKED


@pytest.mark.django_db(databases=["default", "userdata"])
def test_removing_one_of_several_grantees_keeps_the_grant(open_case, lead, member, second_reviewer, store):
    request = file_request(open_case, lead)
    actions.request_submit(actor=lead, request=request)
    actions.request_decide(actor=second_reviewer, request=request, outcome="approve", grantees=[member])
    request.refresh_from_db()
    grant = request.grant
    assert grant.is_usable_by(member)
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    grant.refresh_from_db()
    assert grant.status == GrantStatus.ACTIVE
    assert not grant.is_usable_by(member)
    assert grant.is_usable_by(lead)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [({"title": ""}, "title"), ({"title": "x" * 201}, "title"), ({"case_type": "witch_hunt"}, "case_type")],
)
def test_bad_case_input_saves_nothing(lead, change, field):
    mark = ledger_mark()
    with pytest.raises(ValidationError) as error:
        actions.case_open(actor=lead, **{**FIELDS, **change})
    assert field in error.value.message_dict
    assert Case.objects.count() == 0
    assert events_since(mark) == []


def test_create_page_shows_field_errors_and_keeps_values(lead, client):
    client.force_login(lead)
    response = client.post(reverse("investigations:case_create"), {**FIELDS, "title": "", "case_type": "nope"})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"title", "case_type"}
    assert FIELDS["allegation"].encode() in response.content
    assert Case.objects.count() == 0


def test_create_page_opens_a_pending_case(lead, client):
    client.force_login(lead)
    response = client.post(reverse("investigations:case_create"), FIELDS)
    case = Case.objects.get()
    assert response["Location"] == reverse("investigations:case_detail", args=[case.pk])
    assert case.status == CaseStatus.PENDING_APPROVAL and case.lead == lead


# --- leaks and query counts ----------------------------------------------------------------------


def test_no_case_leaks_over_200_cases_and_5_users(reviewer, second_reviewer, monkeypatch):
    """Builds 200 cases in every state and checks each user against the ground truth."""
    investigators = [make_user(f"inv{i}", [Role.INVESTIGATOR]) for i in range(3)]
    root = make_user("root2", [], is_staff=True, is_superuser=True)
    root.user_permissions.add(*Permission.objects.filter(codename="view_case"))  # global perms open nothing
    users = [*investigators, reviewer, root]
    expected: dict[str, set[int]] = {user.username: set() for user in users}
    for number in range(200):
        lead, colleague = investigators[number % 3], investigators[(number + 1) % 3]
        case = actions.case_open(actor=lead, team=[colleague] if number % 4 == 0 else [], **FIELDS)
        expected[lead.username].add(case.pk)
        if number % 4 == 0:
            expected[colleague.username].add(case.pk)
        if number % 8 == 0:
            actions.case_remove_member(actor=lead, case=case, user=colleague)
            expected[colleague.username].discard(case.pk)
        decider = reviewer if number % 5 == 0 else second_reviewer
        if number % 3 == 0:
            case = actions.case_approve(actor=decider, case=case)
        elif number % 3 == 1:
            case = actions.case_reject(actor=decider, case=case, reason="No.")
        if number % 3 == 0 and number % 2 == 0:
            actions.case_close(actor=lead, case=case, summary="Done.")
        if case.status == CaseStatus.PENDING_APPROVAL or (number % 5 == 0 and number % 3 != 2):
            expected[reviewer.username].add(case.pk)
    all_ids = set(Case.objects.values_list("pk", flat=True))
    assert len(all_ids) == 200
    leaks, missing = [], []
    # Every shape of the visible cases: the UNION, the per-case test a list of many cases uses,
    # and what the list page takes (the per-case test on PostgreSQL from DENSE_VIEWER cases on).
    monkeypatch.setattr(access, "DENSE_VIEWER", 1)
    shapes = {"union": cases_visible_to, "per case": cases_tested_per_row, "list": cases_listed_for, "one row": one_row}
    for user, (shape, cases_for) in itertools.product(users, shapes.items()):
        visible = set(cases_for(user).values_list("pk", flat=True))
        leaks += [f"case {pk} visible to {user.username} ({shape})" for pk in sorted(visible - expected[user.username])]
        missing += [
            f"case {pk} hidden from {user.username} ({shape})" for pk in sorted(expected[user.username] - visible)
        ]
    for user in users:
        for pk in sorted(all_ids - expected[user.username]):
            try:
                get_case_for(user, pk)
            except Http404:
                continue
            leaks.append(f"case {pk} opened by get_case_for for {user.username}")
        for pk in sorted(expected[user.username]):  # and every visible case opens (one row, alone)
            try:
                get_case_for(user, pk)
            except Http404:
                missing.append(f"case {pk} not opened by get_case_for for {user.username}")
    assert not leaks, "\n".join(leaks)
    assert not missing, "\n".join(missing)
    assert expected[root.username] == set()


def test_every_shape_of_the_visible_cases_honours_group_permissions_and_nothing_else(
    open_case, lead, outsider, superuser, auditor, monkeypatch
):
    """A case seen through a group's permission is in every shape while the user is in the group,
    and in none once they leave it; an outsider, a superuser and an auditor see no case in any
    shape (global permissions and superuser status open nothing)."""
    from django.contrib.auth.models import Group

    from investigations.models import CaseGroupObjectPermission

    monkeypatch.setattr(access, "DENSE_VIEWER", 1)
    shapes = (cases_visible_to, cases_tested_per_row, cases_listed_for, one_row)
    superuser.user_permissions.add(*Permission.objects.filter(codename="view_case"))
    for user in (outsider, superuser, auditor):
        assert [list(shape(user)) for shape in shapes] == [[], [], [], []], user.username
    team = Group.objects.create(name="press-office-readers")
    view_case = Permission.objects.get(codename="view_case", content_type__app_label="investigations")
    CaseGroupObjectPermission.objects.create(group=team, permission=view_case, content_object=open_case)
    outsider.groups.add(team)
    assert [list(shape(outsider)) for shape in shapes] == [[open_case]] * 4
    outsider.groups.remove(team)
    assert [list(shape(outsider)) for shape in shapes] == [[], [], [], []]


def _list_queries(client, user, url: str) -> int:
    client.force_login(user)
    client.get(url)  # warm caches that do not depend on the data (content types, session)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_case_list_query_count_is_flat(lead, client):
    for _ in range(10):
        pending_case(lead)
    url = reverse("investigations:case_list")
    few = _list_queries(client, lead, url)
    few_filtered = _list_queries(client, lead, url + "?q=fraud")  # what matches is counted apart
    for _ in range(490):
        pending_case(lead)
    assert cases_visible_to(lead).count() == 500
    assert _list_queries(client, lead, url) == few
    assert _list_queries(client, lead, url + "?q=fraud&page=3") == few_filtered


def test_case_queue_query_count_is_flat(lead, member, reviewer, client):
    for _ in range(3):
        pending_case(lead, [member])
    url = reverse("investigations:case_queue")
    few = _list_queries(client, reviewer, url)
    for _ in range(30):
        pending_case(lead, [member])
    assert _list_queries(client, reviewer, url) == few


def test_case_list_search_and_paging(lead, other_investigator, client):
    mine = [actions.case_open(actor=lead, **{**FIELDS, "title": f"Case number {i}"}) for i in range(30)]
    actions.case_open(actor=other_investigator, **{**FIELDS, "title": "Case number 999"})
    client.force_login(lead)
    url = reverse("investigations:case_list")
    response = client.get(url)
    assert response.context["matching"] == 30 and len(response.context["page"]) == 25
    assert response.context["page"].has_next and "30 cases." in response.content.decode()
    response = client.get(url, {"q": mine[3].reference})
    assert [case.pk for case in response.context["page"]] == [mine[3].pk]
    response = client.get(url, {"q": "number 999"})
    assert list(response.context["page"]) == []


def test_queue_lists_pending_cases_without_buttons_for_own_team(lead, client):
    insider = make_legacy_user("insider", [Role.INVESTIGATOR, Role.LEGAL_REVIEWER])
    own = pending_case(lead, [insider])
    client.force_login(insider)
    response = client.get(reverse("investigations:case_queue"))
    assert own.reference.encode() in response.content
    assert reverse("investigations:case_approve", args=[own.pk]).encode() not in response.content


@pytest.mark.parametrize("persona", ["admin_user", "superuser"])
def test_the_admin_shows_no_case_contents(open_case, request, client, persona):
    """The admin is for operations: cases, their teams and permissions are not readable there."""
    client.force_login(request.getfixturevalue(persona))
    for path in (
        "/admin/investigations/case/",
        f"/admin/investigations/case/{open_case.pk}/change/",
        f"/admin/investigations/case/{open_case.pk}/permissions/",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert open_case.reference not in response.content.decode()
    index = client.get("/admin/").content.decode()
    assert open_case.reference not in index and "/admin/investigations/case/" not in index


def test_no_case_content_is_registered_in_the_admin():
    """Cases, requests, decisions, grants, queries, notes and alerts stay out of the admin for good.
    The registry is the one investigations model an administrator manages there."""
    from django.contrib import admin

    registered = {model._meta.label for model in admin.site._registry if model._meta.app_label == "investigations"}
    assert registered <= {"investigations.ProtectedSubject"}, registered
