"""Tasks on a case, staff-kept case templates, "my tasks", and closing with tasks left."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.models import CaseStatus, CaseTask, Notification, TaskStatus

from .fixtures import open_case_for
from .matrix import check_ledger, events_since, ledger_mark, observed, parse
from .test_case_matrix import _as, build_case

pytestmark = pytest.mark.django_db

LEAK_TASKS = ["Confirm the leak", "Scope what was leaked", "Identify internal access", "Interview", "Report"]


def _events(action: Action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- templates -----------------------------------------------------------------------------


def test_a_new_case_starts_with_its_types_template(admin_user, lead, reviewer):
    actions.case_template_set(actor=admin_user, case_type="leak", titles=[*LEAK_TASKS, "  "])
    leak = open_case_for(lead, reviewer, case_type="leak")
    fraud = open_case_for(lead, reviewer, case_type="fraud")
    assert list(leak.tasks.values_list("title", flat=True)) == LEAK_TASKS
    assert not fraud.tasks.exists()
    created = _events(Action.TASK_CREATED)
    assert [event.details["title"] for event in created] == LEAK_TASKS
    assert {event.case_reference for event in created} == {leak.reference}
    [changed] = _events(Action.CASE_TEMPLATE_CHANGED)
    assert changed.details == {"case_type": "leak", "before": [], "after": LEAK_TASKS}


def test_changing_a_template_leaves_open_cases_alone(admin_user, lead, reviewer):
    actions.case_template_set(actor=admin_user, case_type="leak", titles=LEAK_TASKS)
    earlier = open_case_for(lead, reviewer, case_type="leak")
    actions.case_template_set(actor=admin_user, case_type="leak", titles=["Only this"])
    assert earlier.tasks.count() == len(LEAK_TASKS)
    assert list(open_case_for(lead, reviewer, case_type="leak").tasks.values_list("title", flat=True)) == ["Only this"]


@pytest.mark.parametrize("persona", ["lead", "reviewer", "auditor", "inactive_user"])
def test_only_staff_keep_templates(request, persona):
    user = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        actions.case_template_set(actor=user, case_type="leak", titles=LEAK_TASKS)
    assert not _events(Action.CASE_TEMPLATE_CHANGED)


def test_template_pages_are_staff_only_and_validate(client, admin_user, lead, auditor):
    for user in (lead, auditor):
        client.force_login(user)
        assert client.get(reverse("investigations:case_template_list")).status_code == 404
        assert (
            client.post(reverse("investigations:case_template_edit", args=["leak"]), {"tasks": "x"}).status_code == 404
        )
    client.force_login(admin_user)
    assert client.get(reverse("investigations:case_template_list")).status_code == 200
    assert client.get(reverse("investigations:case_template_edit", args=["nope"])).status_code == 404
    response = client.post(reverse("investigations:case_template_edit", args=["leak"]), {"tasks": "x" * 201})
    assert response.status_code == 200 and "at most 200 characters" in response.content.decode()
    assert not _events(Action.CASE_TEMPLATE_CHANGED)
    response = client.post(
        reverse("investigations:case_template_edit", args=["leak"]), {"tasks": "\n".join(LEAK_TASKS)}
    )
    assert response.status_code == 302
    assert "Scope what was leaked" in client.get(reverse("investigations:case_template_list")).content.decode()


# --- working the tasks -----------------------------------------------------------------------


def test_member_adds_a_task_for_the_lead_who_is_told(
    lead, member, reviewer, django_capture_on_commit_callbacks, deliver_mail
):
    case = open_case_for(lead, reviewer, team=[member])
    due = timezone.localdate() + timedelta(days=3)
    with django_capture_on_commit_callbacks(execute=True):
        task = actions.task_create(
            actor=member, case=case, title="Interview the finance team", assignee=lead, due_date=due
        )
    assert task.status == TaskStatus.OPEN and task.order == 1
    [event] = _events(Action.TASK_CREATED)
    assert event.actor_id == member.pk and event.details["assignee"] == lead.username
    [note] = Notification.objects.filter(recipient=lead)
    assert note.kind == "task_assigned" and case.reference in note.text
    assert [message.to for message in deliver_mail()] == [[lead.email]]
    assert "Interview the finance team" in mail.outbox[0].subject


def test_assignee_must_be_on_the_team(lead, member, other_investigator, reviewer):
    case = open_case_for(lead, reviewer, team=[member])
    with pytest.raises(ValidationError) as error:
        actions.task_create(actor=lead, case=case, title="Look", assignee=other_investigator)
    assert "assignee" in error.value.message_dict
    assert not CaseTask.objects.exists() and not _events(Action.TASK_CREATED)
    task = actions.task_create(actor=lead, case=case, title="Look")
    with pytest.raises(ValidationError):
        actions.task_update(actor=lead, task=task, assignee=other_investigator)
    task.refresh_from_db()
    assert task.assignee is None


def test_status_changes_are_recorded_with_where_they_came_from(lead, reviewer):
    case = open_case_for(lead, reviewer)
    task = actions.task_create(actor=lead, case=case, title="Confirm the leak")
    actions.task_set_status(actor=lead, task=task, status="in_progress")
    actions.task_set_status(actor=lead, task=task, status="in_progress")  # no change, no event
    actions.task_set_status(actor=lead, task=task, status="done")
    moves = [(event.details["from"], event.details["to"]) for event in _events(Action.TASK_STATUS_CHANGED)]
    assert moves == [("open", "in_progress"), ("in_progress", "done")]
    with pytest.raises(ValidationError):
        actions.task_set_status(actor=lead, task=task, status="finished")


def test_outsiders_cannot_touch_tasks(lead, member, other_investigator, reviewer):
    case = open_case_for(lead, reviewer, team=[member])
    task = actions.task_create(actor=lead, case=case, title="Confirm the leak")
    with pytest.raises(PermissionDenied):
        actions.task_set_status(actor=other_investigator, task=task, status="done")
    with pytest.raises(PermissionDenied):
        actions.task_create(actor=reviewer, case=case, title="Sneak in")
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and case.tasks.count() == 1


# --- closing ----------------------------------------------------------------------------------


def test_closing_needs_tasks_finished_or_a_recorded_override(lead, reviewer):
    case = open_case_for(lead, reviewer)
    done = actions.task_create(actor=lead, case=case, title="Confirm the leak")
    left = actions.task_create(actor=lead, case=case, title="Interview")
    actions.task_set_status(actor=lead, task=done, status="done")
    with pytest.raises(ValidationError) as error:
        actions.case_close(actor=lead, case=case, summary="Found the source.")
    assert "Interview" in error.value.message_dict["override_reason"][0]
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and not _events(Action.CASE_CLOSED)
    actions.case_close(actor=lead, case=case, summary="Found the source.", override_reason="The witness left.")
    [closed] = _events(Action.CASE_CLOSED)
    assert closed.details["unfinished_tasks"] == [left.pk] and closed.details["override_reason"] == "The witness left."


def test_closing_with_every_task_done_or_cancelled_needs_no_override(lead, reviewer):
    case = open_case_for(lead, reviewer)
    for title, status in (("Confirm", "done"), ("Interview", "cancelled")):
        actions.task_set_status(actor=lead, task=actions.task_create(actor=lead, case=case, title=title), status=status)
    actions.case_close(actor=lead, case=case, summary="Done.")
    [closed] = _events(Action.CASE_CLOSED)
    assert "override_reason" not in closed.details


def test_close_page_asks_for_the_override_and_a_closed_case_freezes_tasks(client, lead, reviewer):
    case = open_case_for(lead, reviewer)
    task = actions.task_create(actor=lead, case=case, title="Interview")
    client.force_login(lead)
    url = reverse("investigations:case_close", args=[case.pk])
    assert "Interview" in client.get(url).content.decode()
    response = client.post(url, {"summary": "Over.", "confirm": "on"})
    assert response.status_code == 200 and "neither done nor cancelled" in response.content.decode()
    response = client.post(url, {"summary": "Over.", "confirm": "on", "override_reason": "Out of time."})
    assert response.status_code == 302
    with pytest.raises(PermissionDenied):  # the team keeps only view_case
        actions.task_set_status(actor=lead, task=task, status="done")


# --- my tasks ----------------------------------------------------------------------------------


def test_start_page_lists_my_unfinished_tasks_overdue_first(client, lead, member, reviewer):
    case = open_case_for(lead, reviewer, team=[member])
    today = timezone.localdate()
    later = actions.task_create(
        actor=lead, case=case, title="Later task", assignee=member, due_date=today + timedelta(5)
    )
    actions.task_create(actor=lead, case=case, title="Undated task", assignee=member)
    actions.task_create(actor=lead, case=case, title="Overdue task", assignee=member, due_date=today - timedelta(2))
    finished = actions.task_create(actor=lead, case=case, title="Finished task", assignee=member)
    actions.task_set_status(actor=lead, task=finished, status="done")
    actions.task_create(actor=lead, case=case, title="Lead's own task", assignee=lead)
    client.force_login(member)
    page = client.get(reverse("home")).content.decode()
    assert page.index("Overdue task") < page.index(later.title) < page.index("Undated task")
    assert "Finished task" not in page and "Lead&#x27;s own task" not in page and "Lead's own task" not in page
    assert "overdue" in page


# --- the pages for every persona ------------------------------------------------------------

# fmt: off
TASK_MATRIX = """
page         state   lead  member other reviewer auditor admin super anon  inactive
create       open    200   200    404   404      404     404   404   login login
create_post  open    302   302    404   404      404     404   404   login login
edit         open    200   200    404   404      404     404   404   login login
edit_post    open    302   302    404   404      404     404   404   login login
status       open    302   302    404   404      404     404   404   login login
create       closed  403   403    404   404      404     404   404   login login
create_post  closed  403   403    404   404      404     404   404   login login
edit         closed  403   403    404   404      404     404   404   login login
edit_post    closed  403   403    404   404      404     404   404   login login
status       closed  403   403    404   404      404     404   404   login login
create       pending_approval 200 200 404 403   404     404   404   login login
status       pending_approval 302 302 404 403   404     404   404   login login
"""
TEMPLATE_MATRIX = """
page            state lead member other reviewer auditor admin super anon  inactive
template_list   -     404  404    404   404      404     200   200   login login
template_edit   -     404  404    404   404      404     200   200   login login
"""
# fmt: on
_, TASK_CELLS = parse(TASK_MATRIX, key_columns=2)
_, TEMPLATE_CELLS = parse(TEMPLATE_MATRIX, key_columns=2)


def _task_request(page: str, case, task, people: dict) -> tuple[str, str, dict]:
    body = {"title": "Interview again", "description": "", "assignee": people["member"].pk, "due_date": ""}
    return {
        "create": ("get", reverse("investigations:task_create", args=[case.pk]), {}),
        "create_post": ("post", reverse("investigations:task_create", args=[case.pk]), body),
        "edit": ("get", reverse("investigations:task_edit", args=[task.pk]), {}),
        "edit_post": ("post", reverse("investigations:task_edit", args=[task.pk]), body),
        "status": ("post", reverse("investigations:task_status", args=[task.pk]), {"status": "done"}),
    }[page]


def _case_with_task(state: str, people: dict):
    case = build_case("open" if state == "closed" else state, people)
    task = actions.task_create(actor=people["lead"], case=case, title="Interview")
    if state == "closed":
        actions.case_close(actor=people["lead"], case=case, summary="Over.", override_reason="Test.")
    return case, task


@pytest.mark.parametrize(("page", "state"), sorted(TASK_CELLS), ids=lambda value: value)
def test_task_matrix(client, cast, page, state):
    failures = []
    for persona, expected in TASK_CELLS[(page, state)].items():
        case, task = _case_with_task(state, cast)
        method, url, data = _task_request(page, case, task, cast)
        browser = _as(client, cast, persona)
        mark = ledger_mark()
        got = observed(getattr(browser, method)(url, data))
        if got != expected:
            failures.append(f"{persona}: expected {expected}, got {got}")
        elif problem := check_ledger(expected, events_since(mark)):
            failures.append(f"{persona}: {problem}")
    assert not failures, f"{page} on a {state} case:\n" + "\n".join(failures)


@pytest.mark.parametrize(("page", "state"), sorted(TEMPLATE_CELLS), ids=lambda value: value)
def test_template_matrix(client, cast, page, state):
    url = reverse("investigations:case_template_list")
    if page == "template_edit":
        url = reverse("investigations:case_template_edit", args=["leak"])
    failures = []
    for persona, expected in TEMPLATE_CELLS[(page, state)].items():
        got = observed(_as(client, cast, persona).get(url))
        if got != expected:
            failures.append(f"{persona}: expected {expected}, got {got}")
    assert not failures, f"{page}:\n" + "\n".join(failures)
