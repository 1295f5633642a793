"""Worker health (read-only) and django-celery-beat's schedule, every change recorded.

django-celery-beat's own admin saves and bulk-updates rows by hand; here each save, deletion,
enable, disable, toggle and manual run goes through ``operations.actions``.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from .actions import periodic_tasks_run_now, periodic_tasks_set_enabled, schedule_entry_delete, schedule_entry_save
from .models import TaskHealth


@admin.register(TaskHealth)
class TaskHealthAdmin(admin.ModelAdmin):
    """Read-only: the workers write these rows."""

    list_display = ("task", "last_started_at", "last_succeeded_at", "last_failed_at", "last_runtime")
    readonly_fields = ("task", "last_started_at", "last_succeeded_at", "last_failed_at", "last_error", "last_runtime")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class RecordedChanges:
    """Saving and deleting through the audited actions."""

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        schedule_entry_save(actor=request.user, entry=obj, changed=form.changed_data, adding=not change)

    def delete_model(self, request: HttpRequest, obj) -> None:
        schedule_entry_delete(actor=request.user, entry=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for entry in queryset:
            schedule_entry_delete(actor=request.user, entry=entry)


class PeriodicTaskAdmin(RecordedChanges, beat_admin.PeriodicTaskAdmin):
    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request: HttpRequest, queryset) -> None:
        count = periodic_tasks_set_enabled(actor=request.user, tasks=queryset, enabled=True)
        self.message_user(request, f"{count} task(s) enabled.")

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request: HttpRequest, queryset) -> None:
        count = periodic_tasks_set_enabled(actor=request.user, tasks=queryset, enabled=False)
        self.message_user(request, f"{count} task(s) disabled.")

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request: HttpRequest, queryset) -> None:
        count = periodic_tasks_set_enabled(actor=request.user, tasks=queryset, enabled=None)
        self.message_user(request, f"{count} task(s) toggled.")

    @admin.action(description="Run selected tasks")
    def run_tasks(self, request: HttpRequest, queryset) -> None:
        periodic_tasks_run_now(actor=request.user, tasks=queryset)
        super().run_tasks(request, queryset)


class ClockedScheduleAdmin(RecordedChanges, beat_admin.ClockedScheduleAdmin):
    pass


class CrontabScheduleAdmin(RecordedChanges, beat_admin.CrontabScheduleAdmin):
    pass


class SolarScheduleAdmin(RecordedChanges, beat_admin.SolarScheduleAdmin):
    pass


class IntervalScheduleAdmin(RecordedChanges, beat_admin.IntervalScheduleAdmin):
    pass


for _model, _admin in (
    (PeriodicTask, PeriodicTaskAdmin),
    (ClockedSchedule, ClockedScheduleAdmin),
    (CrontabSchedule, CrontabScheduleAdmin),
    (SolarSchedule, SolarScheduleAdmin),
    (IntervalSchedule, IntervalScheduleAdmin),
):
    admin.site.unregister(_model)
    admin.site.register(_model, _admin)
