"""The user admin: every change goes through an accounts action, so each one is on the ledger,
and needs a recent second-factor check (``accounts.stepup.StepUpAdminMixin``): users, roles,
passwords, tokens, unlocking.

Creating a user, setting a password, changing the username or name, staff status and roles:
``user_create``, ``user_set_password``, ``user_update``, ``user_set_privileges``,
``user_set_roles``, ``user_reactivate``. Deactivation, which must revoke grants, is wired by
investigations' admin (accounts may not import investigations). Superuser status is never
granted here. API tokens are listed read-only: nobody mints a token for someone else, and
revoking one is recorded. Groups are the roles: fixed, so their admin is closed.
"""

from __future__ import annotations

from contextvars import ContextVar

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminPasswordChangeForm as DjangoAdminOwnPasswordChangeForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm as BaseAdminPasswordChangeForm
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm
from django.contrib.auth.forms import UserCreationForm as BaseUserCreationForm
from django.contrib.auth.models import Group
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.urls import reverse
from knox.models import AuthToken

from .actions import (
    PROFILE_FIELDS,
    api_token_revoke,
    lockout_clear,
    second_factor_reset,
    second_factor_reset_check,
    second_factor_reset_confirm,
    user_create,
    user_reactivate,
    user_set_password,
    user_set_privileges,
    user_set_roles,
    user_unlink_sso,
    user_update,
)
from .models import SecondFactorReset, User
from .roles import role_conflicts
from .stepup import StepUpAdminMixin, StepUpFormMixin, guard

# Django's password view builds its form with a fixed signature; the form reads who is acting here.
_acting_admin: ContextVar[User | None] = ContextVar("acting_admin", default=None)


class UserChangeForm(BaseUserChangeForm):
    def clean_groups(self):
        """The separation of duties, as an error on the roles field (the action checks it again)."""
        groups = self.cleaned_data.get("groups")
        if groups is not None and (conflicts := role_conflicts(group.name for group in groups)):
            raise ValidationError(conflicts)
        return groups


class UserCreationForm(BaseUserCreationForm):
    """Username and password; roles and staff status are set on the user's page afterwards."""

    class Meta(BaseUserCreationForm.Meta):
        model = User
        fields = ("username",)


class AdminPasswordChangeForm(StepUpFormMixin, BaseAdminPasswordChangeForm):
    def save(self, commit: bool = True) -> User:
        """Through ``user_set_password``: recorded, and the user's sessions and tokens end."""
        password = self.cleaned_data["password1"] if self.cleaned_data.get("set_usable_password", True) else None
        return user_set_password(actor=_acting_admin.get(), user=self.user, password=password, validate=False)


@admin.register(User)
class UserAdmin(StepUpAdminMixin, BaseUserAdmin):
    form = UserChangeForm
    change_user_password_template = "admin/accounts/user/change_password.html"  # noqa: S105 (a template)
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "password1", "password2")}),)
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

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        """Nothing is saved by hand: each change is handed to its action (one ledger event each)."""
        if not change:
            created = user_create(
                actor=request.user, username=obj.username, password=form.cleaned_data["password1"], validate=False
            )
            obj.pk, obj._state.adding = created.pk, False
            return
        stored = User.objects.get(pk=obj.pk)
        changed = set(form.changed_data)
        profile = {field: getattr(obj, field) for field in PROFILE_FIELDS if field in changed}
        if profile:
            user_update(actor=request.user, user=stored, **profile)
        if "is_staff" in changed:
            user_set_privileges(actor=request.user, user=stored, is_staff=obj.is_staff)
        if obj.is_active and not stored.is_active:
            user_reactivate(actor=request.user, user=stored)
        # Deactivating is investigations' user_deactivate (it revokes grants), wired in its admin.

    def save_related(self, request, form, formsets, change):
        # Role changes go through the action so that they reach the ledger.
        groups = form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        if groups is not None and "groups" in form.changed_data:
            user_set_roles(actor=request.user, user=form.instance, roles=[group.name for group in groups])

    def user_change_password(self, request: HttpRequest, id, form_url=""):
        token = _acting_admin.set(request.user)
        try:
            with guard(request):
                return super().user_change_password(request, id, form_url)
        finally:
            _acting_admin.reset(token)


class OwnPasswordChangeForm(DjangoAdminOwnPasswordChangeForm):
    def save(self, commit: bool = True) -> User:
        """An administrator's own password, through ``user_set_password`` (recorded, other sessions end)."""
        return user_set_password(
            actor=self.user, user=self.user, password=self.cleaned_data["new_password1"], validate=False
        )


def _own_password_change(request: HttpRequest, extra_context=None):
    """The admin site's "change password" page, with the recorded form (Django's saves by hand)."""
    defaults = {
        "form_class": OwnPasswordChangeForm,
        "success_url": reverse("admin:password_change_done", current_app=admin.site.name),
        "extra_context": {**admin.site.each_context(request), **(extra_context or {})},
    }
    request.current_app = admin.site.name
    return PasswordChangeView.as_view(**defaults)(request)


# The site builds its URLs from this attribute when the URLconf loads (after this module).
admin.site.password_change = _own_password_change
admin.site.unregister(Group)
admin.site.unregister(AuthToken)
# django-allauth's own admin pages: Custos keeps no e-mail addresses there, and an authenticator
# is never deleted by hand (a reset is the audited, two-person action on the user's page).
admin.site.unregister(EmailAddress)
admin.site.unregister(Authenticator)


@admin.register(AuthToken)
class AuthTokenAdmin(StepUpAdminMixin, admin.ModelAdmin):
    """API tokens, read-only: none is made here (a token for someone else is acting as them);
    deleting one revokes it through ``api_token_revoke``, recorded."""

    list_display = ("token_key", "user", "created", "expiry")
    list_filter = ("user",)
    fields = ("token_key", "user", "created", "expiry")
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request: HttpRequest, obj: AuthToken) -> None:
        api_token_revoke(actor=request.user, token=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for token in queryset:
            api_token_revoke(actor=request.user, token=token)

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke_selected(self, request: HttpRequest, queryset) -> None:
        self.delete_queryset(request, queryset)


@admin.register(AccessAttempt)
class LockoutAdmin(StepUpAdminMixin, admin.ModelAdmin):
    """Failed sign-ins counted by the lockout; staff lift a lockout here, on the record.

    Read-only: attempts are never edited or deleted by hand (that would lift a lockout without
    a ledger entry); the "Unlock" action goes through ``lockout_clear``.
    """

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time", "path_info")
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    fields = list_display
    readonly_fields = list_display
    actions = ["unlock_usernames", "unlock_addresses"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Unlock the selected usernames (recorded)", permissions=["view"])
    def unlock_usernames(self, request, queryset):
        names = sorted({attempt.username for attempt in queryset if attempt.username})
        for username in names:
            lockout_clear(actor=request.user, username=username)
        self.message_user(request, f"Unlocked {len(names)} username(s): {', '.join(names)}.", messages.SUCCESS)

    @admin.action(description="Unlock the selected addresses (recorded)", permissions=["view"])
    def unlock_addresses(self, request, queryset):
        addresses = sorted({attempt.ip_address for attempt in queryset if attempt.ip_address})
        for address in addresses:
            lockout_clear(actor=request.user, address=address)
        self.message_user(request, f"Unlocked {len(addresses)} address(es): {', '.join(addresses)}.", messages.SUCCESS)


# Single sign-on: the provider comes from the environment (no SocialApp rows) and its tokens are
# not kept (no SocialToken rows); links are made by ``manage.py sso_link`` (recorded) and only
# shown and unlinked here.
for _model in (SocialApp, SocialToken, SocialAccount):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(SocialAccount)
class SignOnLinkAdmin(admin.ModelAdmin):
    """Which Custos user each sign-on identity (the provider's ``sub``) signs in as. Read-only;
    "Unlink" goes through ``user_unlink_sso``, recorded."""

    list_display = ("user", "uid", "provider", "last_login", "date_joined")
    search_fields = ("user__username", "uid")
    fields = list_display
    readonly_fields = list_display
    actions = ["unlink_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Unlink the selected sign-on identities (recorded)", permissions=["view"])
    def unlink_selected(self, request: HttpRequest, queryset) -> None:
        links = list(queryset.select_related("user"))
        for link in links:
            user_unlink_sso(actor=request.user, user=link.user, provider=link.provider)
        self.message_user(request, f"Unlinked {len(links)} sign-on identities.", messages.SUCCESS)
class SecondFactorResetForm(forms.ModelForm):
    class Meta:
        model = SecondFactorReset
        fields = ("user", "reason")

    def clean(self):
        cleaned = super().clean()
        user, reason = cleaned.get("user"), cleaned.get("reason")
        if user is not None:
            try:
                second_factor_reset_check(actor=_acting_admin.get(), user=user, reason=reason or "")
            except PermissionDenied as error:
                raise ValidationError(str(error)) from error
        return cleaned


@admin.register(SecondFactorReset)
class SecondFactorResetAdmin(admin.ModelAdmin):
    """Resets of users' second factors: "add" resets a user's factor at once, or, for a staff
    account, proposes it; "Confirm the selected resets" carries out a proposal (another staff
    member). Rows are never edited or deleted."""

    form = SecondFactorResetForm
    list_display = ("user", "proposed_by", "proposed_at", "confirmed_by", "done_at")
    list_filter = ("done_at",)
    actions = ["confirm_resets"]
    readonly_fields = ("proposed_by", "proposed_at", "confirmed_by", "done_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        token = _acting_admin.set(request.user)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        finally:
            _acting_admin.reset(token)

    def save_model(self, request: HttpRequest, obj: SecondFactorReset, form, change: bool) -> None:
        """Handed to the action: recorded, and the user's sessions and tokens end when done."""
        reset = second_factor_reset(actor=request.user, user=obj.user, reason=obj.reason)
        obj.pk, obj._state.adding = reset.pk, False

    @admin.action(description="Confirm the selected resets (a second staff member)", permissions=["view"])
    def confirm_resets(self, request: HttpRequest, queryset) -> None:
        for reset in queryset:
            try:
                second_factor_reset_confirm(actor=request.user, reset=reset)
            except (PermissionDenied, ValidationError) as error:
                self.message_user(
                    request, f"{reset}: {' '.join(getattr(error, 'messages', [str(error)]))}", messages.ERROR
                )
            else:
                self.message_user(request, f"{reset.user.username}: second factor reset.", messages.SUCCESS)
