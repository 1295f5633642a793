"""The case timeline page: the case's events as sentences, filtered by kind and person."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

import audit
from accounts.http import SignedInRequest
from audit.events import Action

from .. import timeline
from ..access import case_for_auditor, get_case_for

PAGE_SIZE = 50


class TimelineFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "Everything"), *((kind, kind.title()) for kind in timeline.KINDS)])
    kind.required = False
    person = forms.CharField(required=False, max_length=150)


def case_timeline(request: SignedInRequest, pk: int) -> HttpResponse:
    """Who did what on the case, oldest first; the team sees it (and whoever sees the case)."""
    return _timeline(request, get_case_for(request.user, pk), for_auditor=False)


def audit_case_timeline(request: SignedInRequest, reference: str) -> HttpResponse:
    """The auditors' second view of a case's ledger: the same sentences, the read recorded."""
    case = case_for_auditor(request.user, reference)
    audit.record(
        action=Action.AUDIT_VIEWED,
        actor=request.user,
        case_reference=case.reference,
        details={"page": "case_timeline", "case": case.reference, "filters": request.GET.dict()},
        request=request,
    )
    return _timeline(request, case, for_auditor=True)


def _timeline(request: SignedInRequest, case, *, for_auditor: bool) -> HttpResponse:
    filters = TimelineFilterForm(request.GET or None)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    viewer = None if for_auditor else request.user
    events = timeline.case_events(case, kind=chosen.get("kind", ""), person=chosen.get("person", ""), viewer=viewer)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "case": case,
        "filters": filters,
        "entries": [timeline.entry(event) for event in page],
        "page": page,
        "people": timeline.people_in(case, viewer),
        "for_auditor": for_auditor,
    }
    return render(request, "investigations/case_timeline.html", context)
