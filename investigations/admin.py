"""The Django admin shows cases and who holds which object permission on them.

It changes nothing: cases change only through the actions (each one audited), and object
permissions only through the team actions, so guardian's per-user and per-group editing
pages are closed here.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from .models import Case, CaseMember


class CaseMemberInline(admin.TabularInline):
    model = CaseMember
    fields = ("user", "is_lead", "added_by", "added_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Case)
class CaseAdmin(GuardedModelAdmin):
    list_display = ("reference", "title", "case_type", "status", "lead", "created_at")
    list_filter = ("status", "case_type")
    search_fields = ("reference", "title")
    inlines = [CaseMemberInline]
    readonly_fields = (
        "reference",
        "title",
        "allegation",
        "case_type",
        "purpose",
        "status",
        "lead",
        "created_at",
        "updated_at",
        "decided_by",
        "decided_at",
        "rejection_reason",
        "closed_at",
        "closure_summary",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Nothing is edited here (see the module docstring); closed cases least of all.
        return False

    def obj_perms_manage_user_view(self, request: HttpRequest, object_pk, user_id):
        raise PermissionDenied("Object permissions change only through the case team actions.")

    def obj_perms_manage_group_view(self, request: HttpRequest, object_pk, group_id):
        raise PermissionDenied("Object permissions change only through the case team actions.")
