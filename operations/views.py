"""The staff page of periodic-task health."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render

from accounts.http import SignedInRequest

from .health import OVERDUE_FACTOR, probe_rows, schedule_health


def require_staff(user) -> None:
    """Raise 404 unless ``user`` is active staff: the page does not reveal that it exists."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        raise Http404


def schedules(request: SignedInRequest) -> HttpResponse:
    require_staff(request.user)
    rows, probes = schedule_health(), probe_rows()
    context = {
        "rows": rows,
        "overdue": [row for row in rows if row.overdue],
        "factor": OVERDUE_FACTOR,
        "probes": probes,
        "failing_probes": [probe for probe in probes if probe["failing"]],
    }
    return render(request, "operations/schedules.html", context)
