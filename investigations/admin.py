"""The Django admin: the protected-subject registry, and user deactivation through the action.

The admin is for operations, not for reading investigations: no case, request, decision,
grant, query, note or alert is registered here (a test enumerates the registry and fails on
one). Cases change only through the actions and object permissions only through the team
actions. accounts may not import investigations, so deactivating a user (which must revoke
their grants) is wired here: the User admin is extended.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import User
from accounts.stepup import StepUpAdminMixin

from . import policy
from .access import may_manage_registry
from .actions import protected_subject_add, protected_subject_change, registry_viewed, user_deactivate
from .models import ProtectedSubject


class ProtectedSubjectAdminForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the entry changes (required when editing); recorded in the audit trail.",
    )

    class Meta:
        model = ProtectedSubject
        fields = ("account_id", "category", "source", "note")

    def clean(self):
        data = super().clean()
        if self.instance.pk and not set(self.changed_data) - {"reason"}:
            self.add_error(None, "Nothing was changed.")
        if self.instance.pk and not (data.get("reason") or "").strip():
            self.add_error("reason", "Give the reason for the change.")
        # clean() runs before the instance takes the form's values: its category is the stored one.
        if self.instance.pk and data.get("category") and policy.is_weaker(self.instance.category, data["category"]):
            self.add_error("category", WEAKER_IN_ADMIN)
        return data

    def validate_unique(self) -> None:
        # An account removed earlier comes back on its old row (actions.protected_subject_add).
        account = self.cleaned_data.get("account_id")
        if not self.instance.pk and ProtectedSubject.objects.filter(account_id=account).exclude(removed_at=None):
            return
        super().validate_unique()


WEAKER_IN_ADMIN = (
    "This category asks less than the current one. Weakening the registry takes two senior legal "
    "reviewers: one proposes it on the registry page, another confirms it there."
)


@admin.register(ProtectedSubject)
class ProtectedSubjectAdmin(StepUpAdminMixin, admin.ModelAdmin):
    """Adds and strengthening changes, through ``actions.protected`` (audited); the account of an
    entry is fixed. Nothing here removes an entry or weakens its category: that is two senior
    legal reviewers' proposal and confirmation on the registry page. Views are recorded."""

    form = ProtectedSubjectAdminForm
    list_display = ("account_id", "category", "source", "added_by", "added_at", "changed_at")
    list_filter = ("category",)
    search_fields = ("account_id", "note", "source")
    fields = ("account_id", "category", "source", "note", "reason")
    actions = None

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).listed()

    def get_readonly_fields(self, request, obj=None):
        return ("account_id",) if obj is not None else ()

    # Administrators manage the registry by their role (staff), not by model permissions; the
    # actions check the same rule again.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff and may_manage_registry(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.has_module_permission(request)

    has_add_permission = has_module_permission
    has_change_permission = has_view_permission

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and getattr(response, "status_code", None) == 200:
            registry_viewed(actor=request.user, page="admin_list", request=request)
        return response

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and getattr(response, "status_code", None) == 200:
            subject = self.get_object(request, object_id)
            registry_viewed(actor=request.user, page="admin_change", subject=subject, request=request)
        return response

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        if change:
            saved = protected_subject_change(
                actor=request.user,
                subject=obj,
                category=data["category"],
                note=data["note"],
                source=data["source"],
                reason=data["reason"],
            )
        else:
            saved = protected_subject_add(
                actor=request.user,
                account_id=data["account_id"],
                category=data["category"],
                note=data["note"],
                source=data["source"],
            )
        obj.pk = saved.pk


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AccountsUserAdmin):
    """Deactivation goes through ``user_deactivate``: grants revoked, object permissions removed."""

    actions = ["deactivate_selected"]

    def save_model(self, request, obj, form, change) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if deactivating:
            obj.is_active = True  # saved as it was; the action below does the deactivating
        super().save_model(request, obj, form, change)
        if deactivating:
            user_deactivate(actor=request.user, user=obj)
            obj.refresh_from_db()

    @admin.action(description="Deactivate selected users (revokes their grants)")
    def deactivate_selected(self, request, queryset) -> None:
        for user in queryset.filter(is_active=True):
            try:
                user_deactivate(actor=request.user, user=user)
            except PermissionDenied as error:
                self.message_user(request, f"{user.username}: {error}", messages.ERROR)
