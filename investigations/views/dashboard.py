"""The start page: what needs this user's attention, one section per role they hold.

Every list comes from an ``access`` chokepoint and is cut to a few rows; the totals are one
COUNT each, so the page costs the same number of queries with ten rows or ten thousand.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

import audit
from accounts.http import SignedInRequest
from audit import summary
from audit.access import is_auditor
from audit.events import Action

from .. import access
from ..filters import DecisionFilter
from .listing import filtered_page

SHOWN = 10
DECISIONS_PAGE_SIZE = 25


def _cut(queryset, shown: int = SHOWN) -> dict:
    """The first ``shown`` rows and the total: what a dashboard section needs."""
    return {"rows": list(queryset[:shown]), "total": queryset.count()}


def _investigator(user) -> dict:
    return {
        "cases": _cut(access.my_active_cases(user).select_related("lead").order_by("-updated_at", "-id")),
        "requests": _cut(
            access.my_requests_awaiting_decision(user).select_related("case").order_by("submitted_at", "id")
        ),
        "returned": _cut(access.my_returned_requests(user).select_related("case").order_by("-updated_at", "-id")),
        "grants": _cut(access.my_usable_grants(user).select_related("case").order_by("expires_at", "id")),
        "queries": _cut(access.my_recent_queries(user).order_by("-requested_at", "-id")),
        "tasks": _cut(access.my_open_tasks(user).select_related("case")),
    }


def _reviewer(user) -> dict:
    return {
        "cases": _cut(access.cases_awaiting_approval_for(user).select_related("lead").order_by("updated_at", "id")),
        "requests": _cut(access.review_queue_for(user)),
    }


def _auditor(request: SignedInRequest) -> summary.Today:
    today = summary.today()
    audit.record(
        action=Action.AUDIT_VIEWED,
        actor=request.user,
        details={"page": "dashboard", "events_today": today.events, "denials_today": today.denials},
        request=request,
    )
    return today


def dashboard(request: SignedInRequest) -> HttpResponse:
    user = request.user
    context = {
        "today": timezone.localdate(),
        "investigator": _investigator(user) if user.is_investigator else None,
        "reviewer": _reviewer(user) if user.is_reviewer else None,
        "auditor": _auditor(request) if is_auditor(user) else None,
    }
    return render(request, "investigations/dashboard.html", context)


def decision_list(request: SignedInRequest) -> HttpResponse:
    """A legal reviewer's own decisions, newest first."""
    if not request.user.is_reviewer:
        raise PermissionDenied("The list of decisions is for legal reviewers.")
    context = filtered_page(
        request,
        DecisionFilter,
        access.decisions_made_by(request.user),
        fetch=lambda decisions: decisions.select_related("request__case"),
        default_order=("-created_at", "-id"),
        page_size=DECISIONS_PAGE_SIZE,
    )
    return render(request, "investigations/decision_list.html", context)
