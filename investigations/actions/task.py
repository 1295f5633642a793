"""Tasks on a case and the staff-kept case templates.

The case team works the tasks (``add_note``: the right to write in the case file); anyone on
the team may add, edit, assign or move one while the case is not closed. Each change is one
ledger event; an assignment tells the assignee (in the app and by email, after commit).
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse

import audit
from accounts.models import User
from audit.events import Action

from .. import notify as mail
from ..access import CONTRIBUTE_PERM, TASKS_DENIED, object_perms, record_denial
from ..errors import InvalidTransition
from ..models import Case, CaseMember, CaseTask, CaseTemplate, CaseType, NotificationKind, TaskStatus, TemplateTask
from ..models.case import TITLE_MAX
from .locks import locked, retry_on_conflict
from .notification import notify

TASK_FIELDS = ("title", "description", "assignee", "due_date", "order")
TEMPLATE_TASKS_MAX = 30


def _require_contributor(actor: User, case: Case) -> None:
    if CONTRIBUTE_PERM not in object_perms(actor, case):
        raise record_denial(actor=actor, case=case, perm=CONTRIBUTE_PERM, message=TASKS_DENIED)
    if case.is_closed:
        raise InvalidTransition("The case is closed; its tasks no longer change.", case=case)


def _clean(task: CaseTask) -> None:
    task.title = (task.title or "").strip()
    if task.assignee_id and not CaseMember.objects.filter(case_id=task.case_id, user_id=task.assignee_id).exists():
        raise ValidationError({"assignee": "Assign the task to a member of the case team."})
    task.full_clean(exclude=["case", "created_by"])


def _event(action: Action, *, actor: User | None, task: CaseTask, **details) -> None:
    audit.record(
        action=action,
        actor=actor,
        target=task.case,
        case_reference=task.case.reference,
        details={"task_id": task.pk, "title": task.title, **details},
    )


def _tell_assignee(*, actor: User | None, task: CaseTask) -> None:
    """In-app and by email: the assignee of ``task`` learns of it once the change commits."""
    if task.assignee is None or (actor is not None and task.assignee_id == actor.pk):
        return
    link = reverse("investigations:case_detail", args=[task.case_id]) + f"#task-{task.pk}"
    text = f"You were assigned “{task.title}” on case {task.case.reference}."
    notify(actor=actor, recipients=[task.assignee], kind=NotificationKind.TASK_ASSIGNED, text=text, link=link)
    context = {"task": task, "actor": actor, "url": mail.site_url(link)}
    mail.queue("task-assigned", [task.assignee.email], context)


@retry_on_conflict
def task_create(
    *,
    actor: User,
    case: Case,
    title: str,
    description: str = "",
    assignee: User | None = None,
    due_date: date | None = None,
) -> CaseTask:
    """Add a task to the case (last in order). Needs the team's ``add_note``; not on a closed case."""
    _require_contributor(actor, case)
    with transaction.atomic():
        case = locked(Case.objects).get(pk=case.pk)
        _require_contributor(actor, case)
        last = case.tasks.order_by("-order").values_list("order", flat=True).first()
        task = CaseTask(
            case=case,
            title=title,
            description=description,
            assignee=assignee,
            due_date=due_date,
            order=(last or 0) + 1,
            created_by=actor,
        )
        _clean(task)
        task.save()
        _event(Action.TASK_CREATED, actor=actor, task=task, assignee=assignee.username if assignee else None)
        _tell_assignee(actor=actor, task=task)
    return task


@retry_on_conflict
def task_update(*, actor: User, task: CaseTask, **changes) -> CaseTask:
    """Change a task's title, description, assignee, due date or order; a new assignee is told."""
    unknown = set(changes) - set(TASK_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    _require_contributor(actor, task.case)
    with transaction.atomic():
        task = locked(CaseTask.objects.select_related("case", "assignee")).get(pk=task.pk)
        changed = [name for name, value in changes.items() if getattr(task, name) != value]
        for name in changed:
            setattr(task, name, changes[name])
        _clean(task)
        if not changed:
            return task
        task.save(update_fields=[*changed, "updated_at"])
        details = {"fields": sorted(changed)}
        if "assignee" in changed:
            details["assignee"] = task.assignee.username if task.assignee else None
        _event(Action.TASK_UPDATED, actor=actor, task=task, **details)
        if "assignee" in changed:
            _tell_assignee(actor=actor, task=task)
    return task


@retry_on_conflict
def task_set_status(*, actor: User, task: CaseTask, status: str) -> CaseTask:
    """Move a task to open, in progress, done or cancelled (recorded with where it came from)."""
    if status not in TaskStatus.values:
        raise ValidationError({"status": f"Choose one of: {', '.join(TaskStatus.values)}."})
    _require_contributor(actor, task.case)
    with transaction.atomic():
        task = locked(CaseTask.objects.select_related("case")).get(pk=task.pk)
        if task.status == status:
            return task
        previous, task.status = task.status, status
        task.save(update_fields=["status", "updated_at"])
        _event(Action.TASK_STATUS_CHANGED, actor=actor, task=task, **{"from": previous, "to": status})
    return task


def tasks_from_template(*, actor: User, case: Case) -> list[CaseTask]:
    """Inside ``case_open``'s transaction: the new case starts with its type's template tasks."""
    template = CaseTemplate.objects.filter(case_type=case.case_type).first()
    if template is None:
        return []
    tasks = []
    for order, template_task in enumerate(template.tasks.all(), start=1):
        task = CaseTask.objects.create(case=case, title=template_task.title, order=order, created_by=actor)
        _event(Action.TASK_CREATED, actor=actor, task=task, from_template=case.case_type)
        tasks.append(task)
    return tasks


# --- case templates (staff) ------------------------------------------------------------------


def clean_template_titles(titles: list[str]) -> list[str]:
    cleaned = [title.strip() for title in titles if title.strip()]
    if len(cleaned) > TEMPLATE_TASKS_MAX:
        raise ValidationError({"tasks": f"At most {TEMPLATE_TASKS_MAX} tasks (this has {len(cleaned)})."})
    too_long = [title for title in cleaned if len(title) > TITLE_MAX]
    if too_long:
        raise ValidationError({"tasks": f"A task title has at most {TITLE_MAX} characters: “{too_long[0][:40]}…”."})
    return cleaned


@retry_on_conflict
def case_template_set(*, actor: User, case_type: str, titles: list[str]) -> CaseTemplate:
    """Staff set the default tasks of new cases of ``case_type`` (one title per task, in order).

    Cases already open keep their tasks; only cases opened afterwards start from the new list.
    """
    if not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Only staff keep the case templates.")
    if case_type not in CaseType.values:
        raise ValidationError({"case_type": "Unknown case type."})
    titles = clean_template_titles(titles)
    with transaction.atomic():
        CaseTemplate.objects.get_or_create(case_type=case_type)
        template = locked(CaseTemplate.objects).get(case_type=case_type)
        before = list(template.tasks.values_list("title", flat=True))
        if before == titles:
            return template
        template.tasks.all().delete()
        TemplateTask.objects.bulk_create(
            [TemplateTask(template=template, title=title, order=order) for order, title in enumerate(titles, start=1)]
        )
        template.updated_by = actor
        template.save(update_fields=["updated_by", "updated_at"])
        audit.record(
            action=Action.CASE_TEMPLATE_CHANGED,
            actor=actor,
            target=template,
            details={"case_type": case_type, "before": before, "after": titles},
        )
    return template
