from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm
from django.core.exceptions import ValidationError

from .actions import user_set_roles
from .models import User
from .roles import role_conflicts


class UserChangeForm(BaseUserChangeForm):
    def clean_groups(self):
        """The separation of duties, as an error on the roles field (the action checks it again)."""
        groups = self.cleaned_data.get("groups")
        if groups is not None and (conflicts := role_conflicts(group.name for group in groups)):
            raise ValidationError(conflicts)
        return groups


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserChangeForm
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff")
    list_filter = ("is_active", "is_staff", "groups")
    # Superuser status is never granted from the admin: it opens nothing useful and is a risk.
    readonly_fields = ("is_superuser", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Roles", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    filter_horizontal = ("groups",)

    def save_related(self, request, form, formsets, change):
        # Role changes go through the action so that they reach the ledger.
        groups = form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        if groups is not None:
            user_set_roles(actor=request.user, user=form.instance, roles=[group.name for group in groups])
