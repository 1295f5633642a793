"""Read-only admin for the ledger: no add, change or delete; auditors only; reads recorded."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from . import streams
from .access import is_auditor
from .events import Action
from .ledger import record
from .models import AuditEvent, StreamDestination


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


class StreamDestinationForm(forms.ModelForm):
    """The secret is write-only: never shown back; left blank, the current one stays."""

    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook: the HMAC-SHA256 key, at least 32 characters. Leave blank to keep the current one.",
    )
    action_prefixes = forms.CharField(
        required=False,
        help_text="Event-type prefixes separated by commas (request., grant.revoked); empty: every event.",
    )

    class Meta:
        model = StreamDestination
        fields = ("name", "kind", "url", "secret", "ca_file", "action_prefixes", "paused")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["action_prefixes"] = ", ".join(self.instance.action_prefixes)
            self.initial["secret"] = ""

    def clean(self):
        data = super().clean()
        fields = {name: data.get(name, "") for name in streams.EDITABLE_FIELDS}
        try:
            self.stream_fields = streams.clean_fields(fields, existing=self.instance if self.instance.pk else None)
        except ValidationError as error:
            raise ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages) from error
        data.update(self.stream_fields)  # the instance the form validates (unique name) gets the clean values
        return data


@admin.register(StreamDestination)
class StreamDestinationAdmin(admin.ModelAdmin):
    """Staff keep the destinations; every change goes through ``audit.streams`` and is recorded."""

    form = StreamDestinationForm
    list_display = ("name", "kind", "url", "paused", "cursor", "stream_state", "last_success_at", "last_error")
    readonly_fields = ("from_environment", "cursor", "failures", "failing_since", "last_success_at", "last_error")
    actions = None

    @admin.display(description="state")
    def stream_state(self, destination: StreamDestination) -> str:
        return streams.state(destination)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request) and not (obj and obj.from_environment)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and not (obj and obj.from_environment)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "name") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        fields, paused = form.stream_fields, form.cleaned_data.get("paused", False)
        if not change:
            name = form.cleaned_data["name"]
            created = streams.destination_create(actor=request.user, name=name, paused=paused, **fields)
            obj.pk = created.pk
            return
        current = StreamDestination.objects.get(pk=obj.pk)
        current = streams.destination_update(actor=request.user, destination=current, **fields)
        if paused != current.paused:
            change_state = streams.destination_pause if paused else streams.destination_resume
            change_state(actor=request.user, destination=current, reason="changed in the admin")

    def delete_model(self, request, obj):
        streams.destination_delete(actor=request.user, destination=obj, reason="deleted in the admin")

    def delete_queryset(self, request, queryset):
        for destination in queryset:
            self.delete_model(request, destination)
