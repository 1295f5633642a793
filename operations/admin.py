from django.contrib import admin

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
