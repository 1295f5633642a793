"""List filters and sorting (django-filter), all in the URL so that a filtered list can be bookmarked.

Each filter set narrows a queryset the caller already took from an ``access`` chokepoint: a
filter can only hide rows, never reach rows the user may not see. No choice list names people:
the lead is typed (a username), so a filter form lists no one and costs nothing per visible row
(a list of the distinct leads of every visible row grew with the rows).
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Case as Case_
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value, When

from accounts.models import User

from .models import (
    ID_MAX,
    Alert,
    AlertKind,
    AlertSeverity,
    Case,
    CasePriority,
    CaseStatus,
    CaseType,
    DataPullRequest,
    Decision,
    DecisionOutcome,
    Grant,
    GrantStatus,
)
from .models.case import TAG_MAX, normalise_tag

USERNAME_MAX = User._meta.get_field("username").max_length


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
    lead = django_filters.CharFilter(
        field_name="lead__username", lookup_expr="iexact", label="Lead (username)", max_length=USERNAME_MAX
    )
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

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.search(value)

    def with_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(tags__name=normalise_tag(value)) if normalise_tag(value) else queryset


class ApiCaseFilter(CaseFilter):
    """The case list's filters for the API (``/api/v1/cases/``): the page's, with the API's
    ``sort`` (``newest``, the default, or ``priority``, highest first)."""

    sort = django_filters.ChoiceFilter(  # type: ignore[assignment]
        choices=[("newest", "newest"), ("priority", "priority")],
        method="ordered",
        help_text="newest (default) or priority, highest first.",
    )

    def ordered(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.by_priority() if value == "priority" else queryset


class ApiRequestFilter(django_filters.FilterSet):
    """The request list's filters for the API (``/api/v1/requests/``)."""

    case = django_filters.NumberFilter(field_name="case_id", min_value=1, max_value=ID_MAX, help_text="Case id.")
    status = django_filters.ChoiceFilter(choices=DataPullRequest._meta.get_field("status").choices)

    class Meta:
        model = DataPullRequest
        fields: list[str] = []


class GrantFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=GrantStatus.choices, empty_label="any status")
    held = django_filters.ChoiceFilter(
        method="held_by_viewer",
        choices=[("yes", "held by me"), ("no", "not held by me")],
        label="Grantee",
        empty_label="anyone",
    )
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

    def held_by_viewer(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        mine = Exists(Grant.grantees.through.objects.filter(grant=OuterRef("pk"), user=self.request.user))
        return queryset.filter(mine) if value == "yes" else queryset.exclude(mine)


class RankOrdering(django_filters.OrderingFilter):
    """Column sorting where one column sorts by rank (most severe first), not by the stored word."""

    def __init__(self, *args, ranked: str, ranks: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.ranked, self.ranks = ranked, ranks

    def filter(self, qs: QuerySet, value) -> QuerySet:
        if value and value[0].lstrip("-") == self.ranked:
            rank = Case_(*[When(**{self.ranked: word, "then": Value(i)}) for i, word in enumerate(self.ranks)])
            order = F("_rank").asc() if value[0].startswith("-") else F("_rank").desc()
            return qs.annotate(_rank=rank).order_by(order, "-pk")
        return super().filter(qs, value)


class ReviewQueueFilter(django_filters.FilterSet):
    """The review queue: requests a reviewer may decide (``access.review_queue_for``)."""

    q = django_filters.CharFilter(method="search", label="Case reference or title", max_length=200)
    case_type = django_filters.ChoiceFilter(
        field_name="case__case_type", choices=CaseType.choices, label="Case type", empty_label="any type"
    )
    priority = django_filters.ChoiceFilter(
        field_name="case__priority", choices=CasePriority.choices, label="Priority", empty_label="any priority"
    )
    protected = django_filters.ChoiceFilter(
        method="by_protection",
        choices=[("yes", "names a protected subject"), ("no", "names none")],
        label="Protected subjects",
        empty_label="either",
    )
    lead = django_filters.CharFilter(
        field_name="case__lead__username", lookup_expr="iexact", label="Lead (username)", max_length=USERNAME_MAX
    )
    submitted_from = _date("submitted_at__date", "gte", "Submitted from")
    submitted_to = _date("submitted_at__date", "lte", "Submitted until")
    sort = django_filters.OrderingFilter(
        fields=(
            ("id", "request"),
            ("case__reference", "case"),
            ("submitted_at", "submitted"),
            ("approval_count", "approvals"),
        ),
        label="Sort by",
    )

    class Meta:
        model = DataPullRequest
        fields: list[str] = []

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(case__reference__icontains=value) | Q(case__title__icontains=value))

    def by_protection(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        named = Q(protected_categories=[])
        return queryset.exclude(named) if value == "yes" else queryset.filter(named)


class DecisionFilter(django_filters.FilterSet):
    """A reviewer's own decisions (``access.decisions_made_by``)."""

    outcome = django_filters.ChoiceFilter(choices=DecisionOutcome.choices, label="Decision", empty_label="any decision")
    case = django_filters.CharFilter(
        field_name="request__case__reference", lookup_expr="icontains", label="Case reference", max_length=40
    )
    decided_from = _date("created_at__date", "gte", "Decided from")
    decided_to = _date("created_at__date", "lte", "Decided until")
    sort = django_filters.OrderingFilter(
        fields=(
            ("created_at", "decided"),
            ("request_id", "request"),
            ("request__case__reference", "case"),
            ("outcome", "decision"),
        ),
        label="Sort by",
    )

    class Meta:
        model = Decision
        fields: list[str] = []


ALERT_STATES = [("open", "Open"), ("acknowledged", "Acknowledged"), ("all", "All")]


class AlertFilter(django_filters.FilterSet):
    """Oversight alerts (``access.alerts_visible_to``); open ones unless another state is chosen."""

    narrows_by_default = True  # the list counts what matches apart from the total (listing.filtered_page)

    state = django_filters.ChoiceFilter(method="in_state", choices=ALERT_STATES, label="State", empty_label=None)
    severity = django_filters.ChoiceFilter(choices=AlertSeverity.choices, empty_label="any severity")
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices, empty_label="any kind")
    case = django_filters.CharFilter(
        field_name="case__reference", lookup_expr="icontains", label="Case reference", max_length=40
    )
    raised_from = _date("event_at__date", "gte", "Raised from")
    raised_to = _date("event_at__date", "lte", "Raised until")
    sort = RankOrdering(
        fields=(
            ("id", "alert"),
            ("event_at", "when"),
            ("severity", "severity"),
            ("kind", "kind"),
            ("case__reference", "case"),
        ),
        ranked="severity",
        ranks=[AlertSeverity.INFO, AlertSeverity.WARNING, AlertSeverity.CRITICAL],
        label="Sort by",
    )

    class Meta:
        model = Alert
        fields: list[str] = []

    def __init__(self, data=None, queryset: QuerySet | None = None, **kwargs):
        if data is not None and not data.get("state"):
            data = data.copy()
            data["state"] = "open"
        super().__init__(data, queryset, **kwargs)

    def in_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "open":
            return queryset.open()
        if value == "acknowledged":
            return queryset.acknowledged()
        return queryset
