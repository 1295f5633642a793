"""The protected-subject registry page for senior legal reviewers (anyone else: 404).

Every view of the registry is recorded (``protected_subject.viewed``): who looked at which
protected accounts is itself worth knowing. Removing an entry or moving it to a weaker
category is a proposal here; another senior reviewer confirms or declines it on the list.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.http import SignedInRequest
from accounts.stepup import confirm_page, step_up_required

from .. import access, actions, policy
from ..forms import apply_errors
from ..forms.protected import ProtectedChangeForm, ProtectedRemoveForm, ProtectedSubjectForm, WithdrawProposalForm
from ..models import ProtectedSubject

LIST_LIMIT = 1000


def registry_viewed(request: SignedInRequest, page: str, subject: ProtectedSubject | None = None, **details) -> None:
    actions.registry_viewed(actor=request.user, page=page, subject=subject, request=request, **details)


def protected_list(request: SignedInRequest) -> HttpResponse:
    entries = list(access.registry_for(request.user).order_by("account_id")[:LIST_LIMIT])
    proposals = list(access.proposals_for(request.user).filter(status="pending"))
    for proposal in proposals:
        proposal.mine = proposal.proposed_by_id == request.user.pk  # type: ignore[attr-defined]  # for the template
    registry_viewed(request, "protected_list", shown=len(entries))
    return render(request, "investigations/protected_list.html", {"entries": entries, "proposals": proposals})


@step_up_required
def protected_add(request: SignedInRequest) -> HttpResponse:
    access.registry_for(request.user)
    form = ProtectedSubjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and request.step_up.ok:
        try:
            subject = actions.protected_subject_add(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Account {subject.account_id} is on the registry.")
            return redirect("investigations:protected_list")
    return render(request, "investigations/protected_form.html", {"form": form})


@step_up_required
def protected_edit(request: SignedInRequest, pk: int) -> HttpResponse:
    """Change an entry; a weaker category becomes a proposal for a second senior reviewer."""
    subject = access.get_protected_for(request.user, pk)
    if request.method == "GET":
        registry_viewed(request, "protected_edit", subject)
    form = ProtectedChangeForm(request.POST or None, initial=ProtectedChangeForm.initial_from(subject))
    if request.method == "POST" and form.is_valid() and request.step_up.ok:
        data = form.cleaned_data
        weaker = policy.is_weaker(subject.category, data["category"])
        try:
            if weaker:
                actions.protected_weakening_propose(actor=request.user, subject=subject, **data)
            else:
                actions.protected_subject_change(actor=request.user, subject=subject, **data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            if weaker:
                messages.success(request, _proposed(subject, "moving"))
            else:
                messages.success(request, f"Registry entry for account {subject.account_id} changed.")
            return redirect("investigations:protected_list")
    return render(request, "investigations/protected_form.html", {"form": form, "subject": subject})


def _proposed(subject: ProtectedSubject, what: str) -> str:
    return (
        f"Proposal recorded: {what} account {subject.account_id} takes effect only when another senior legal "
        "reviewer confirms it. Until then the entry protects as before. Oversight has been alerted."
    )


@step_up_required
def protected_remove(request: SignedInRequest, pk: int) -> HttpResponse:
    """Propose removing an entry (a second senior reviewer confirms)."""
    subject = access.get_protected_for(request.user, pk)
    if request.method == "GET":
        registry_viewed(request, "protected_remove", subject)
    form = ProtectedRemoveForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and request.step_up.ok:
        try:
            actions.protected_weakening_propose(actor=request.user, subject=subject, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _proposed(subject, "removing"))
            return redirect("investigations:protected_list")
    context = {"form": form, "subject": subject, "cooling_days": policy.cooling_days()}
    return render(request, "investigations/protected_remove.html", context)


@require_POST
@step_up_required
def proposal_confirm(request: SignedInRequest, pk: int) -> HttpResponse:
    proposal = access.get_proposal_for(request.user, pk)
    if not request.step_up.ok:
        what = f"Confirm the proposal to weaken the protection of account {proposal.subject.account_id}."
        return confirm_page(request, what=what, cancel_url=reverse("investigations:protected_list"))
    actions.protected_weakening_confirm(actor=request.user, proposal=proposal)
    messages.success(request, f"Confirmed: the change to account {proposal.subject.account_id} took effect.")
    return redirect("investigations:protected_list")


def proposal_withdraw(request: SignedInRequest, pk: int) -> HttpResponse:
    proposal = access.get_proposal_for(request.user, pk)
    form = WithdrawProposalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.protected_weakening_withdraw(actor=request.user, proposal=proposal, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"The proposal about account {proposal.subject.account_id} was withdrawn.")
            return redirect("investigations:protected_list")
    return render(request, "investigations/protected_withdraw.html", {"form": form, "proposal": proposal})
