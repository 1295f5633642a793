"""Tasks on a case, and the case templates (per case type) that new cases start with."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models

from .case import TEXT_MAX, TITLE_MAX, Case, CaseType


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_TASK_STATUSES = (TaskStatus.DONE, TaskStatus.CANCELLED)


class CaseTaskQuerySet(models.QuerySet["CaseTask"]):
    def unfinished(self) -> CaseTaskQuerySet:
        return self.exclude(status__in=FINISHED_TASK_STATUSES)

    def overdue_first(self) -> CaseTaskQuerySet:
        """By due date, earliest first (so overdue ones lead), undated last."""
        return self.order_by(models.F("due_date").asc(nulls_last=True), "case_id", "order", "id")


class CaseTask(models.Model):
    """One thing to do on a case; changed only through the task actions (each one recorded)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=TITLE_MAX)
    description = models.TextField(blank=True, max_length=TEXT_MAX)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="case_tasks"
    )
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    order = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CaseTaskQuerySet.as_manager()

    class Meta:
        ordering = ["order", "id"]
        indexes = [models.Index(fields=["assignee", "status"])]

    def __str__(self) -> str:
        return f"task {self.pk} on {self.case_id}: {self.title}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_TASK_STATUSES

    def is_overdue(self, today: date) -> bool:
        return not self.is_finished and self.due_date is not None and self.due_date < today


class CaseTemplate(models.Model):
    """The default tasks a new case of one type starts with; kept by staff."""

    case_type = models.CharField(max_length=32, choices=CaseType.choices, unique=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["case_type"]

    def __str__(self) -> str:
        return f"template for {self.get_case_type_display()} cases"


class TemplateTask(models.Model):
    template = models.ForeignKey(CaseTemplate, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=TITLE_MAX)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.title
