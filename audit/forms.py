from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from .actions import Action
from .summary import DENIALS

DENIALS_CHOICE = "denials"


class IsoDateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")  # <input type="date"> reads ISO only, whatever the locale


ISO_DATE = IsoDateInput


class EventFilterForm(forms.Form):
    """Filters of the auditor pages and exports; every field optional."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    actor = forms.CharField(required=False, max_length=150, label="Actor (username)")
    action = forms.ChoiceField(
        required=False,
        choices=[
            ("", "any action"),
            (DENIALS_CHOICE, "any denial (refused access, refused queries, failed logins)"),
            *Action.choices,
        ],
    )
    case_reference = forms.CharField(required=False, max_length=32, label="Case reference")
    target_type = forms.CharField(required=False, max_length=100, label="Target type")
    target_id = forms.CharField(required=False, max_length=64, label="Target id")
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    seq_from = forms.IntegerField(required=False, min_value=1, label="From sequence")
    seq_to = forms.IntegerField(required=False, min_value=1, label="To sequence")

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def used(self) -> dict[str, str]:
        """The filters in use, as strings: what the audit.viewed / audit.exported event records."""
        if not self.is_valid():
            return {"invalid": "true"}
        return {name: str(value) for name, value in self.cleaned_data.items() if value not in (None, "")}

    def apply(self, events: QuerySet) -> QuerySet:
        if not self.is_valid():
            return events.none()
        data = self.cleaned_data
        if data["q"]:
            term = data["q"]
            events = events.filter(
                Q(actor_username__icontains=term)
                | Q(case_reference__icontains=term)
                | Q(target_type__icontains=term)
                | Q(target_id__icontains=term)
                | Q(action__icontains=term)
            )
        if data["action"] == DENIALS_CHOICE:  # what the start page counts as denials
            events = events.filter(action__in=DENIALS)
        exact = {
            "actor_username": data["actor"],
            "action": "" if data["action"] == DENIALS_CHOICE else data["action"],
            "case_reference": data["case_reference"],
            "target_type": data["target_type"],
            "target_id": data["target_id"],
        }
        events = events.filter(**{field: value for field, value in exact.items() if value})
        # Days in the reader's time zone, as the pages show times (and the start page counts "today").
        zone = timezone.get_current_timezone()
        if data["date_from"]:
            events = events.filter(occurred_at__gte=datetime.combine(data["date_from"], time.min, tzinfo=zone))
        if data["date_to"]:
            next_day = data["date_to"] + timedelta(days=1)
            events = events.filter(occurred_at__lt=datetime.combine(next_day, time.min, tzinfo=zone))
        if data["seq_from"]:
            events = events.filter(seq__gte=data["seq_from"])
        if data["seq_to"]:
            events = events.filter(seq__lte=data["seq_to"])
        return events
