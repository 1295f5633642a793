"""Pages for data-pull requests: file, read, edit, submit, withdraw, review queue, decide."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.http import SignedInRequest
from accounts.models import User
from accounts.stepup import CODE_FIELD, step_up_required

from .. import access, actions, policy
from ..filters import ReviewQueueFilter
from ..forms import apply_errors
from ..forms.request import DecisionForm, OptionalReasonForm, RequestForm
from ..gateway import DIRECT_KINDS
from ..models import DataPullRequest, DecisionOutcome, RequestStatus
from ..models.request import APPROVING_OUTCOMES
from ..scope import Scope, limits
from . import conflict
from .listing import filtered_page

QUEUE_PAGE_SIZE = 25


def request_create(request: SignedInRequest, case_pk: int) -> HttpResponse:
    case = access.get_case_for(request.user, case_pk, perm="file_request")
    form = RequestForm(request.POST or None, initial={"duration_hours": 24, "legal_basis": "internal_policy"})
    if request.method == "POST" and form.is_valid():
        try:
            created = actions.request_create(actor=request.user, case=case, **form.action_kwargs())
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Draft saved. Submit it to legal when it is complete.")
            return redirect("investigations:request_detail", pk=created.pk)
    return render(request, "investigations/request_form.html", {"form": form, "case": case, "limits": limits()})


def request_edit(request: SignedInRequest, pk: int) -> HttpResponse:
    data_request = access.get_request_for(request.user, pk, perm="edit")
    if not data_request.is_editable:
        return conflict(
            request, f"The request is {data_request.get_status_display().lower()}; it can no longer be edited."
        )
    form = RequestForm(request.POST or None, initial=RequestForm.initial_from(data_request))
    if request.method == "POST" and form.is_valid():
        try:
            actions.request_update(actor=request.user, request=data_request, **form.action_kwargs())
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Request updated.")
            return redirect("investigations:request_detail", pk=data_request.pk)
    context = {
        "form": form,
        "case": data_request.case,
        "data_request": data_request,
        "limits": limits(),
        "returned": _return_decision(data_request),
    }
    return render(request, "investigations/request_form.html", context)


def _return_decision(data_request: DataPullRequest):
    """The decision that returned ``data_request`` for changes (its reason belongs on the edit form)."""
    if data_request.status != RequestStatus.RETURNED:
        return None
    returns = data_request.decisions.filter(outcome=DecisionOutcome.RETURN).select_related("reviewer")
    return returns.order_by("-created_at", "-id").first()


def _approved_narrowed(data_request: DataPullRequest, decisions) -> bool:
    """An approved request whose final round narrowed the scope (the badge says so)."""
    if data_request.status != RequestStatus.APPROVED:
        return False
    return any(
        d.review_round == data_request.review_round and d.outcome == DecisionOutcome.APPROVE_NARROWED for d in decisions
    )


def request_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    data_request = access.get_request_for(request.user, pk)
    grant = access.grants_visible_to(request.user).filter(request=data_request).first()
    protection = _protection(request.user, data_request)
    pending = data_request.status == RequestStatus.SUBMITTED and not protection["withheld"]
    decisions = access.decisions_shown_to(request.user, data_request)
    context = {
        "data_request": data_request,
        "case": data_request.case,
        "decisions": decisions,
        "grant": grant,
        "narrowed": _approved_narrowed(data_request, decisions),
        "still_needed": actions.approvals_still_needed(data_request) if pending else "",
        **protection,
        **access.request_flags(request.user, data_request),
    }
    return render(request, "investigations/request_detail.html", context)


@require_POST
def request_submit(request: SignedInRequest, pk: int) -> HttpResponse:
    data_request = access.get_request_for(request.user, pk, perm="submit")
    try:
        actions.request_submit(actor=request.user, request=data_request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages) + " Edit the request and submit again.")
        return redirect("investigations:request_detail", pk=data_request.pk)
    messages.success(request, "Submitted to legal for a decision.")
    return redirect("investigations:request_detail", pk=data_request.pk)


def request_withdraw(request: SignedInRequest, pk: int) -> HttpResponse:
    data_request = access.get_request_for(request.user, pk, perm="withdraw")
    if not data_request.is_editable:
        return conflict(request, f"The request is {data_request.get_status_display().lower()}; it cannot be withdrawn.")
    form = OptionalReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        actions.request_withdraw(actor=request.user, request=data_request, reason=form.cleaned_data["reason"])
        messages.success(request, "Request withdrawn.")
        return redirect("investigations:request_detail", pk=data_request.pk)
    return render(request, "investigations/request_withdraw.html", {"form": form, "data_request": data_request})


def review_queue(request: SignedInRequest) -> HttpResponse:
    if not request.user.is_reviewer:
        raise PermissionDenied("The review queue is for legal reviewers.")
    context = filtered_page(
        request,
        ReviewQueueFilter,
        access.review_queue_for(request.user),
        fetch=access.review_queue_rows,
        default_order=("submitted_at", "id"),
        page_size=QUEUE_PAGE_SIZE,
    )
    return render(request, "investigations/review_queue.html", context | {"queue": context["page"].object_list})


@step_up_required
def request_decide(request: SignedInRequest, pk: int) -> HttpResponse:
    data_request = access.get_request_for(request.user, pk, perm="decide")
    if data_request.status != RequestStatus.SUBMITTED:
        return conflict(request, f"The request is {data_request.get_status_display().lower()}; it cannot be decided.")
    form = DecisionForm(request.POST or None, request=data_request, initial=DecisionForm.initial_from(data_request))
    if request.method == "POST" and form.is_valid() and not request.POST.get("change") and request.step_up.ok:
        if _needs_confirmation(data_request, form, request):
            return _confirm_protected_approval(request, data_request, form)
        try:
            _decide(request.user, data_request, form)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Decision recorded.")
            return redirect("investigations:request_detail", pk=data_request.pk)
    earlier = data_request.decisions.filter(review_round=data_request.review_round).select_related("reviewer")
    context = {
        "data_request": data_request,
        "case": data_request.case,
        "form": form,
        "earlier": earlier,
        "still_needed": actions.approvals_still_needed(data_request),
        **_protection(request.user, data_request),
    }
    return render(request, "investigations/request_decide.html", context)


def _protection(user: User, data_request: DataPullRequest) -> dict:
    """What the request pages show of the resolution and the protected policy.

    To whoever ``access.withholds_resolution`` names (the case team before approval), nothing
    that depends on the user-data store or the registry: the same page whatever the typed
    identifiers reach. Legal reviewers off the team see the accounts, the protected subjects,
    the policy and what stops an approval now.
    """
    withheld = access.withholds_resolution(user, data_request)
    detail = not withheld and access.sees_protection_detail(user, data_request)
    return {
        "withheld": withheld,
        "shown_subjects": access.subjects_shown_to(user, data_request),
        "typed_indirect": any(entry.get("kind") not in DIRECT_KINDS for entry in data_request.subject_inputs),
        "hits": policy.protected_hits(data_request) if detail else [],
        "policy": policy.request_policy(data_request),
        "refusals": actions.approval_problems(data_request)
        if detail and data_request.status == RequestStatus.SUBMITTED
        else [],
        "show_resolution": detail,
        "limits": limits(),
    }


def _needs_confirmation(data_request: DataPullRequest, form: DecisionForm, request: SignedInRequest) -> bool:
    """Approving a request under the protected policy (registry or purpose limit) takes a second, explicit step."""
    approving = form.cleaned_data["outcome"] in APPROVING_OUTCOMES
    return data_request.needs_protected_policy and approving and request.POST.get("confirm_protected") != "yes"


def _confirm_protected_approval(
    request: SignedInRequest, data_request: DataPullRequest, form: DecisionForm
) -> HttpResponse:
    """Say what the approval does (oversight is told) and carry the posted decision to the confirmation."""
    carried = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", CODE_FIELD)
        for value in values
    ]
    narrowed = form.cleaned_data["outcome"] == "approve_narrowed"
    context = {
        "data_request": data_request,
        "case": data_request.case,
        "carried": carried,
        "scope": Scope(**form.narrowed_fields()) if narrowed else Scope(**_requested_fields(data_request)),
        "outcome": dict(form.fields["outcome"].choices)[form.cleaned_data["outcome"]],  # type: ignore[attr-defined]
        "reason": form.cleaned_data["reason"],
        "still_needed": actions.approvals_still_needed(data_request),
    }
    return render(request, "investigations/request_decide_confirm.html", context)


def _requested_fields(data_request: DataPullRequest) -> dict:
    return {
        "subjects": tuple(data_request.subjects),
        "categories": tuple(data_request.categories),
        "window_start": data_request.window_start,
        "window_end": data_request.window_end,
        "duration_hours": data_request.duration_hours,
    }


def _decide(user: User, data_request: DataPullRequest, form: DecisionForm) -> None:
    data = form.cleaned_data
    scope = Scope(**form.narrowed_fields()) if data["outcome"] == "approve_narrowed" else None
    actions.request_decide(
        actor=user,
        request=data_request,
        outcome=data["outcome"],
        reason=data["reason"],
        scope=scope,
        grantees=list(data["grantees"]),
    )
