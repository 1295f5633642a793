"""Admin for the protected-subject registry, and deactivation through the action.

accounts may not import investigations, so deactivating a user (which must revoke their
grants) is wired here: the User admin is extended, not replaced.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import User

from .actions import protected_subject_add, protected_subject_remove, user_deactivate
from .models import ProtectedSubject


@admin.register(ProtectedSubject)
class ProtectedSubjectAdmin(admin.ModelAdmin):
    list_display = ("account_id", "category", "added_by", "added_at")
    list_filter = ("category",)
    search_fields = ("account_id", "note")
    fields = ("account_id", "category", "note")
    actions = ["remove_selected"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Entries are added or removed (both audited), never edited in place.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if change:
            raise PermissionDenied("Registry entries are not edited; remove and add again.")
        saved = protected_subject_add(
            actor=request.user, account_id=obj.account_id, category=obj.category, note=obj.note
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj) -> None:
        protected_subject_remove(actor=request.user, subject=obj)

    def delete_queryset(self, request, queryset) -> None:
        for subject in queryset:
            protected_subject_remove(actor=request.user, subject=subject)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Remove selected accounts from the registry")
    def remove_selected(self, request, queryset) -> None:
        self.delete_queryset(request, queryset)


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
