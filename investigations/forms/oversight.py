"""Forms of the oversight pages: filtering alerts, acknowledging one."""

from __future__ import annotations

from django import forms

from ..models import AlertKind
from ..models.case import TEXT_MAX

STATES = [("open", "Open"), ("acknowledged", "Acknowledged"), ("all", "All")]


class AlertFilterForm(forms.Form):
    state = forms.ChoiceField(choices=STATES, required=False)
    kind = forms.ChoiceField(choices=[("", "Any kind"), *AlertKind.choices], required=False)

    def apply(self, alerts):
        """Filter ``alerts`` by the valid fields; open alerts when nothing is chosen."""
        self.is_valid()
        state = self.cleaned_data.get("state") or "open"
        if state == "open":
            alerts = alerts.open()
        elif state == "acknowledged":
            alerts = alerts.acknowledged()
        if self.cleaned_data.get("kind"):
            alerts = alerts.filter(kind=self.cleaned_data["kind"])
        return alerts

    def used(self) -> dict[str, str]:
        return {name: value for name, value in self.cleaned_data.items() if value}


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=TEXT_MAX,
        help_text="What you checked, and why the alert can be closed. Recorded in the audit trail.",
    )
