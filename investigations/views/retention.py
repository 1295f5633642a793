"""The legal hold page: an independent legal reviewer places or lifts a case's legal hold."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from accounts.http import SignedInRequest

from .. import actions
from ..access import get_case_for_legal_hold
from ..forms import apply_errors
from ..forms.case import LegalHoldForm
from . import conflict


def case_legal_hold(request: SignedInRequest, pk: int) -> HttpResponse:
    case = get_case_for_legal_hold(request.user, pk)
    offered = "lift" if case.legal_hold else "place"
    form = LegalHoldForm(request.POST or None, initial={"action": offered})
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["action"] != offered:
            done = "placed" if case.legal_hold else "lifted"
            return conflict(request, f"The legal hold was already {done}; look at the case again.", case=case)
        change = actions.case_legal_hold_lift if case.legal_hold else actions.case_legal_hold_set
        try:
            change(actor=request.user, case=case, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Legal hold placed." if offered == "place" else "Legal hold lifted.")
            return redirect("investigations:case_detail", pk=case.pk)
    return render(request, "investigations/case_legal_hold.html", {"case": case, "form": form, "offered": offered})
