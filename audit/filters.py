"""The auditor's event filters (django-filter), in the URL: the list, its count and the exports
read the same boxes, so what is exported is what was typed."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from .events import Action
from .models import AuditEvent
from .summary import DENIALS

DENIALS_CHOICE = "denials"
NEWEST_FIRST, OLDEST_FIRST = "-seq", "seq"


class IsoDateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")  # <input type="date"> reads ISO only, whatever the locale


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


MAX_UTC_OFFSET = timedelta(hours=16)


class EventFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        for name in ("since", "until"):
            # PostgreSQL takes offsets up to 15:59; a wider one is the caller's mistake, not a 500.
            offset = data[name].utcoffset() if data.get(name) else None
            if offset is not None and abs(offset) >= MAX_UTC_OFFSET:
                self.add_error(name, "A time zone offset between -15:59 and +15:59.")
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "Before since.")
        return data


class EventFilter(django_filters.FilterSet):
    """Filters of the auditor pages and exports; every field optional."""

    q = django_filters.CharFilter(method="search", label="Search", max_length=200)
    actor = django_filters.CharFilter(field_name="actor_username", label="Actor (username)", max_length=150)
    action = django_filters.ChoiceFilter(
        method="with_action",
        choices=[(DENIALS_CHOICE, "any denial (refused access, refused queries, failed logins)"), *Action.choices],
        empty_label="any action",
    )
    case_reference = django_filters.CharFilter(label="Case reference", max_length=32)
    target_type = django_filters.CharFilter(label="Target type", max_length=100)
    target_id = django_filters.CharFilter(label="Target id", max_length=64)
    # Days in the reader's time zone, as the pages show times (and the start page counts "today").
    date_from = django_filters.DateFilter(method="from_day", label="From", widget=IsoDateInput)
    date_to = django_filters.DateFilter(method="to_day", label="To", widget=IsoDateInput)
    seq_from = IntegerFilter(field_name="seq", lookup_expr="gte", label="From sequence", min_value=1)
    seq_to = IntegerFilter(field_name="seq", lookup_expr="lte", label="To sequence", min_value=1)

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = EventFilterForm

    def __init__(self, data=None, queryset: QuerySet | None = None, **kwargs):
        super().__init__(data, AuditEvent.objects.all() if queryset is None else queryset, **kwargs)

    @property
    def newest_first(self) -> bool:
        """The order of the list (the ledger's sequence either way; keyset pages follow it)."""
        return (self.data or {}).get("sort") != OLDEST_FIRST

    def events(self) -> QuerySet:
        """The matching events (none when a box holds something invalid), unordered."""
        return self.qs if self.is_valid() else self.queryset.none()

    def used(self) -> dict[str, str]:
        """The filters in use, as strings: what the audit.viewed / audit.exported event records."""
        if not self.is_valid():
            return {"invalid": "true"}
        return {name: str(value) for name, value in self.form.cleaned_data.items() if value not in (None, "")}

    def search(self, events: QuerySet, name: str, term: str) -> QuerySet:
        return events.filter(
            Q(actor_username__icontains=term)
            | Q(case_reference__icontains=term)
            | Q(target_type__icontains=term)
            | Q(target_id__icontains=term)
            | Q(action__icontains=term)
        )

    def with_action(self, events: QuerySet, name: str, value: str) -> QuerySet:
        if value == DENIALS_CHOICE:  # what the start page counts as denials
            return events.filter(action__in=DENIALS)
        return events.filter(action=value)

    def from_day(self, events: QuerySet, name: str, day) -> QuerySet:
        return events.filter(occurred_at__gte=datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone()))

    def to_day(self, events: QuerySet, name: str, day) -> QuerySet:
        next_day = datetime.combine(day + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone())
        return events.filter(occurred_at__lt=next_day)


class ApiEventFilter(EventFilter):
    """The same filters for the API (``/api/v1/audit/events/``), with its names: ``case`` for the
    case reference, and ``since``/``until`` as instants (ISO 8601) beside the pages' days."""

    case = django_filters.CharFilter(
        field_name="case_reference", max_length=32, help_text="Case reference, e.g. INV-2026-0042."
    )
    since = django_filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="Events at or after (ISO 8601)."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="lt", help_text="Events before (ISO 8601)."
    )
