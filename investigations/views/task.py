"""Task pages (add, edit, move) and the staff's case templates."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.http import SignedInRequest

from .. import actions
from ..access import CONTRIBUTE_PERM, case_templates_for, get_case_for, get_task_for
from ..forms import apply_errors
from ..forms.task import CaseTemplateForm, TaskForm, TaskStatusForm
from ..models import CaseTask, CaseType
from . import conflict


def _back_to(case_id: int) -> HttpResponse:
    return redirect("investigations:case_detail", pk=case_id)


def task_create(request: SignedInRequest, pk: int) -> HttpResponse:
    case = get_case_for(request.user, pk, perm=CONTRIBUTE_PERM)
    if case.is_closed:
        return conflict(request, "The case is closed; its tasks no longer change.", case=case)
    form = TaskForm(request.POST or None, case=case)
    if request.method == "POST" and form.is_valid():
        try:
            actions.task_create(actor=request.user, case=case, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Task added.")
            return _back_to(case.pk)
    return render(request, "investigations/task_form.html", {"case": case, "form": form, "task": None})


def task_edit(request: SignedInRequest, pk: int) -> HttpResponse:
    task = get_task_for(request.user, pk, change=True)
    if task.case.is_closed:
        return conflict(request, "The case is closed; its tasks no longer change.", case=task.case)
    form = TaskForm(request.POST or None, instance=CaseTask.objects.get(pk=task.pk), case=task.case)
    if request.method == "POST" and form.is_valid():
        try:
            actions.task_update(actor=request.user, task=task, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Task saved.")
            return _back_to(task.case_id)
    return render(request, "investigations/task_form.html", {"case": task.case, "form": form, "task": task})


@require_POST
def task_status(request: SignedInRequest, pk: int) -> HttpResponse:
    task = get_task_for(request.user, pk, change=True)
    form = TaskStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose open, in progress, done or cancelled.")
        return _back_to(task.case_id)
    actions.task_set_status(actor=request.user, task=task, status=form.cleaned_data["status"])
    return _back_to(task.case_id)


def case_template_list(request: SignedInRequest) -> HttpResponse:
    """Staff: the default tasks of each case type."""
    templates = {template.case_type: template for template in case_templates_for(request.user)}
    rows = [(value, label, templates.get(value)) for value, label in CaseType.choices]
    return render(request, "investigations/case_template_list.html", {"rows": rows})


def case_template_edit(request: SignedInRequest, case_type: str) -> HttpResponse:
    templates = case_templates_for(request.user)
    if case_type not in CaseType.values:
        raise Http404
    template = templates.filter(case_type=case_type).first()
    current = "\n".join(task.title for task in template.tasks.all()) if template else ""
    form = CaseTemplateForm(request.POST or None, initial={"tasks": current})
    if request.method == "POST" and form.is_valid():
        try:
            actions.case_template_set(actor=request.user, case_type=case_type, titles=form.cleaned_data["tasks"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Template for {CaseType(case_type).label} cases saved.")
            return redirect("investigations:case_template_list")
    label = CaseType(case_type).label
    return render(request, "investigations/case_template_form.html", {"form": form, "label": label})
