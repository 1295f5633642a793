"""Read-only admin for the ledger: no add, change or delete; auditors only; reads recorded."""

from django.contrib import admin

from .access import is_auditor
from .actions import Action
from .ledger import record
from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("seq", "occurred_at", "actor_username", "action", "target_type", "target_id", "case_reference")
    list_filter = ("action",)
    search_fields = ("actor_username", "case_reference", "target_id")
    ordering = ("-seq",)
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return is_auditor(request.user) and super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return is_auditor(request.user) and super().has_module_permission(request)

    def changelist_view(self, request, extra_context=None):
        if self.has_view_permission(request):
            record(
                action=Action.AUDIT_VIEWED,
                actor=request.user,
                details={"page": "admin_changelist", "filters": dict(request.GET.items())},
                request=request,
            )
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if self.has_view_permission(request):
            record(
                action=Action.AUDIT_VIEWED,
                actor=request.user,
                target=("audit.auditevent", object_id),
                details={"page": "admin_detail"},
                request=request,
            )
        return super().change_view(request, object_id, form_url, extra_context)
