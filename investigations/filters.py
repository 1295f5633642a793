"""List filters and sorting (django-filter), all in the URL so that a filtered list can be bookmarked.

Each filter set narrows a queryset the caller already took from an ``access`` chokepoint: a
filter can only hide rows, never reach rows the user may not see. Choices that name people
(leads) come from the same visible rows.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet

from accounts.models import User

from .models import Case, CasePriority, CaseStatus, CaseType, Grant, GrantStatus
from .models.case import TAG_MAX, normalise_tag


class IsoDateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


def _date(field: str, lookup: str, label: str) -> django_filters.DateFilter:
    return django_filters.DateFilter(field_name=field, lookup_expr=lookup, label=label, widget=IsoDateInput)


class CaseOrdering(django_filters.OrderingFilter):
    """Column sorting; "priority" sorts by rank (critical first), not by the stored word."""

    def filter(self, qs: QuerySet, value) -> QuerySet:
        if value and value[0] in ("priority", "-priority"):
            return qs.by_priority(descending=value[0] == "priority")
        return super().filter(qs, value)


class CaseFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Reference or title", max_length=200)
    status = django_filters.ChoiceFilter(choices=CaseStatus.choices, empty_label="any status")
    case_type = django_filters.ChoiceFilter(choices=CaseType.choices, label="Type", empty_label="any type")
    priority = django_filters.ChoiceFilter(choices=CasePriority.choices, empty_label="any priority")
    tag = django_filters.CharFilter(
        method="with_tag", label="Tag", max_length=TAG_MAX, widget=forms.TextInput(attrs={"list": "known-tags"})
    )
    lead = django_filters.ModelChoiceFilter(queryset=User.objects.none(), empty_label="anyone", label="Lead")
    opened_from = _date("created_at__date", "gte", "Opened from")
    opened_to = _date("created_at__date", "lte", "Opened until")
    sort = CaseOrdering(
        fields=(
            ("reference", "reference"),
            ("title", "title"),
            ("case_type", "type"),
            ("priority", "priority"),
            ("status", "status"),
            ("lead__username", "lead"),
            ("created_at", "opened"),
        ),
        label="Sort by",
    )

    class Meta:
        model = Case
        fields: list[str] = []

    def __init__(self, data=None, queryset: QuerySet | None = None, **kwargs):
        super().__init__(data, queryset, **kwargs)
        leads = User.objects.filter(pk__in=self.queryset.values("lead")).order_by("username")
        self.filters["lead"].queryset = leads
        self.form.fields["lead"].queryset = leads
        self.form.fields["lead"].label_from_instance = lambda user: user.display_name

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.matching(q=value)

    def with_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(tags__name=normalise_tag(value)) if normalise_tag(value) else queryset


class GrantFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=GrantStatus.choices, empty_label="any status")
    case = django_filters.CharFilter(field_name="case__reference", lookup_expr="icontains", label="Case reference")
    expires_from = _date("expires_at__date", "gte", "Expires from")
    expires_to = _date("expires_at__date", "lte", "Expires until")
    sort = django_filters.OrderingFilter(
        fields=(
            ("id", "grant"),
            ("case__reference", "case"),
            ("status", "status"),
            ("expires_at", "expires"),
        ),
        label="Sort by",
    )

    class Meta:
        model = Grant
        fields: list[str] = []
