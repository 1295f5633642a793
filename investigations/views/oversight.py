"""Oversight pages: alerts (auditors only) and grant scope-diff reports.

Every page reads objects through ``access``; non-auditors get 404 on alert pages. Viewing is
recorded like the audit pages (``audit.viewed``), since alerts are read off the audit trail.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render

import audit
from accounts.http import SignedInRequest
from audit.access import require_auditor
from audit.events import Action
from audit.models import AuditEvent

from .. import access
from ..actions import oversight
from ..filters import AlertFilter
from ..forms import apply_errors
from ..forms.oversight import AcknowledgeForm
from . import conflict
from .listing import filtered_page

PAGE_SIZE = 50


def _viewed(request: SignedInRequest, page: str, target=None, **details) -> None:
    details = {"page": page, **details}
    audit.record(action=Action.AUDIT_VIEWED, actor=request.user, target=target, details=details, request=request)


def alert_list(request: SignedInRequest) -> HttpResponse:
    require_auditor(request.user)
    context = filtered_page(
        request,
        AlertFilter,
        access.alerts_visible_to(request.user),
        fetch=lambda alerts: alerts.select_related("case", "user", "acknowledged_by"),
        default_order=("-event_seq", "-id"),
        page_size=PAGE_SIZE,
    )
    used = {name: str(value) for name, value in context["filter"].form.cleaned_data.items() if value}
    _viewed(request, "alert_list", filters=used, shown=len(context["page"]))
    return render(request, "investigations/alert_list.html", context | {"alerts": context["page"].object_list})


def alert_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    alert = access.get_alert_for(request.user, pk)
    event = AuditEvent.objects.filter(seq=alert.event_seq).first()
    _viewed(request, "alert_detail", target=alert)
    context = {
        "alert": alert,
        "event": event,
        "acknowledge_problem": None if alert.is_acknowledged else oversight.acknowledge_problem(request.user, alert),
    }
    return render(request, "investigations/alert_detail.html", context)


def alert_acknowledge(request: SignedInRequest, pk: int) -> HttpResponse:
    alert = access.get_alert_for(request.user, pk)
    if alert.is_acknowledged:
        return conflict(request, "This alert has already been acknowledged.")
    form = AcknowledgeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            oversight.alert_acknowledge(actor=request.user, alert=alert, note=form.cleaned_data["note"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Alert acknowledged. Your note is in the audit trail.")
            return redirect("investigations:alert_detail", pk=alert.pk)
    problem = oversight.acknowledge_problem(request.user, alert)
    return render(request, "investigations/alert_acknowledge.html", {"alert": alert, "form": form, "problem": problem})


def report_list(request: SignedInRequest) -> HttpResponse:
    require_auditor(request.user)
    reports = access.reports_visible_to(request.user)
    page = Paginator(reports, PAGE_SIZE).get_page(request.GET.get("page"))
    _viewed(request, "report_list", shown=len(page.object_list))
    return render(request, "investigations/report_list.html", {"page": page, "reports": page.object_list})


def report_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    report = access.get_report_for(request.user, pk)
    for_auditor = request.user.is_auditor
    if for_auditor:
        _viewed(request, "report_detail", target=report)
    context = {"report": report, "grant": report.grant, "for_auditor": for_auditor}
    return render(request, "investigations/report_detail.html", context)
