"""The legal hold page: an independent legal reviewer places a case's legal hold, or proposes
lifting it; a second one confirms the lift."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from accounts.http import SignedInRequest
from accounts.stepup import step_up_required

from .. import actions
from ..access import get_case_for_legal_hold
from ..forms import apply_errors
from ..forms.case import LegalHoldForm
from . import conflict


@step_up_required
def case_legal_hold(request: SignedInRequest, pk: int) -> HttpResponse:
    """Place a legal hold, or propose or confirm lifting it (which destroys evidence at the next
    purge past retention: it needs a recent second-factor check, as the decisions do)."""
    case = get_case_for_legal_hold(request.user, pk)
    offered = "lift" if case.legal_hold else "place"
    form = LegalHoldForm(request.POST or None, initial={"action": offered})
    if request.method == "POST" and form.is_valid() and (offered == "place" or request.step_up.ok):
        if form.cleaned_data["action"] != offered:
            done = "placed" if case.legal_hold else "lifted"
            return conflict(request, f"The legal hold was already {done}; look at the case again.", case=case)
        change = actions.case_legal_hold_lift if case.legal_hold else actions.case_legal_hold_set
        try:
            case = change(actor=request.user, case=case, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            if offered == "place":
                messages.success(request, "Legal hold placed.")
            elif case.legal_hold:
                messages.success(request, "Lifting proposed: the hold stays until a second legal reviewer confirms it.")
            else:
                messages.success(request, "Legal hold lifted.")
            return redirect("investigations:case_detail", pk=case.pk)
    context = {
        "case": case,
        "form": form,
        "offered": offered,
        # Lifting takes two legal reviewers: the one who proposed it waits for another (until
        # the proposal lapses: then anyone's lift is a new proposal).
        "waiting": case.legal_hold
        and case.legal_hold_lift_by_id == request.user.pk
        and not case.lift_proposal_lapsed(),
        "confirming": case.legal_hold
        and case.legal_hold_lift_by_id not in (None, request.user.pk)
        and not case.lift_proposal_lapsed(),
        "lift_hours": settings.EVIDENCE["HOLD_LIFT_PROPOSAL_HOURS"],
    }
    return render(request, "investigations/case_legal_hold.html", context)
