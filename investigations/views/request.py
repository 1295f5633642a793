"""Pages for data-pull requests: file, read, edit, submit, withdraw, review queue, decide."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import User

from .. import access, actions
from ..errors import InvalidTransition
from ..forms import apply_errors
from ..forms.request import DecisionForm, OptionalReasonForm, RequestForm
from ..models import DataPullRequest, RequestStatus
from ..scope import Scope, limits
from . import conflict


def request_create(request: HttpRequest, case_pk: int) -> HttpResponse:
    case = access.get_case_for(request.user, case_pk, perm="file_request")
    form = RequestForm(request.POST or None, initial={"duration_hours": 24, "legal_basis": "internal_policy"})
    if request.method == "POST" and form.is_valid():
        try:
            created = actions.request_create(actor=request.user, case=case, **form.action_kwargs())
        except ValidationError as error:
            apply_errors(form, error)
        except InvalidTransition as error:
            return conflict(request, str(error))
        else:
            messages.success(request, "Draft saved. Submit it to legal when it is complete.")
            return redirect("investigations:request_detail", pk=created.pk)
    return render(request, "investigations/request_form.html", {"form": form, "case": case, "limits": limits()})


def request_edit(request: HttpRequest, pk: int) -> HttpResponse:
    pull = access.get_request_for(request.user, pk, perm="edit")
    if not pull.is_editable:
        return conflict(request, f"The request is {pull.get_status_display().lower()}; it can no longer be edited.")
    form = RequestForm(request.POST or None, initial=RequestForm.initial_from(pull))
    if request.method == "POST" and form.is_valid():
        try:
            actions.request_update(actor=request.user, request=pull, **form.action_kwargs())
        except ValidationError as error:
            apply_errors(form, error)
        except InvalidTransition as error:
            return conflict(request, str(error))
        else:
            messages.success(request, "Request updated.")
            return redirect("investigations:request_detail", pk=pull.pk)
    context = {"form": form, "case": pull.case, "pull": pull, "limits": limits()}
    return render(request, "investigations/request_form.html", context)


def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    pull = access.get_request_for(request.user, pk)
    decisions = pull.decisions.select_related("reviewer").order_by("review_round", "created_at", "id")
    grant = access.grants_visible_to(request.user).filter(request=pull).first()
    context = {
        "pull": pull,
        "case": pull.case,
        "decisions": decisions,
        "grant": grant,
        "still_needed": actions.approvals_still_needed(pull) if pull.status == RequestStatus.SUBMITTED else "",
        **access.request_flags(request.user, pull),
    }
    return render(request, "investigations/request_detail.html", context)


@require_POST
def request_submit(request: HttpRequest, pk: int) -> HttpResponse:
    pull = access.get_request_for(request.user, pk, perm="submit")
    try:
        actions.request_submit(actor=request.user, request=pull)
    except InvalidTransition as error:
        return conflict(request, str(error))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages) + " Edit the request and submit again.")
        return redirect("investigations:request_detail", pk=pull.pk)
    messages.success(request, "Submitted to legal for a decision.")
    return redirect("investigations:request_detail", pk=pull.pk)


def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    pull = access.get_request_for(request.user, pk, perm="withdraw")
    if not pull.is_editable:
        return conflict(request, f"The request is {pull.get_status_display().lower()}; it cannot be withdrawn.")
    form = OptionalReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.request_withdraw(actor=request.user, request=pull, reason=form.cleaned_data["reason"])
        except InvalidTransition as error:
            return conflict(request, str(error))
        messages.success(request, "Request withdrawn.")
        return redirect("investigations:request_detail", pk=pull.pk)
    return render(request, "investigations/request_withdraw.html", {"form": form, "pull": pull})


def review_queue(request: HttpRequest) -> HttpResponse:
    if not request.user.is_reviewer:
        raise PermissionDenied("The review queue is for legal reviewers.")
    number = _page_number(request.GET.get("page"))
    start = (number - 1) * QUEUE_PAGE_SIZE
    # One row more than the page tells whether there is a next page, without a COUNT of the queue.
    rows = list(access.review_queue_for(request.user)[start : start + QUEUE_PAGE_SIZE + 1])
    context = {
        "queue": rows[:QUEUE_PAGE_SIZE],
        "next_page": number + 1 if len(rows) > QUEUE_PAGE_SIZE else None,
        "previous_page": number - 1 if number > 1 else None,
    }
    return render(request, "investigations/review_queue.html", context)


QUEUE_PAGE_SIZE = 25
MAX_QUEUE_PAGE = 10_000


def _page_number(value: str | None) -> int:
    """A page number from the query string: anything but a small positive integer means page 1."""
    return int(value) if value and value.isdigit() and 0 < int(value) <= MAX_QUEUE_PAGE else 1


def _team(pull: DataPullRequest) -> list[User]:
    members = User.objects.filter(case_memberships__case=pull.case, is_active=True).exclude(pk=pull.requested_by_id)
    return list(members.order_by("username"))


def request_decide(request: HttpRequest, pk: int) -> HttpResponse:
    pull = access.get_request_for(request.user, pk, perm="decide")
    if pull.status != RequestStatus.SUBMITTED:
        return conflict(request, f"The request is {pull.get_status_display().lower()}; it cannot be decided.")
    form = DecisionForm(request.POST or None, request=pull, team=_team(pull), initial=DecisionForm.initial_from(pull))
    if request.method == "POST" and form.is_valid():
        try:
            _decide(request.user, pull, form)
        except ValidationError as error:
            apply_errors(form, error)
        except InvalidTransition as error:
            return conflict(request, str(error))
        else:
            messages.success(request, "Decision recorded.")
            return redirect("investigations:request_detail", pk=pull.pk)
    earlier = pull.decisions.filter(review_round=pull.review_round).select_related("reviewer")
    context = {
        "pull": pull,
        "case": pull.case,
        "form": form,
        "earlier": earlier,
        "still_needed": actions.approvals_still_needed(pull),
    }
    return render(request, "investigations/request_decide.html", context)


def _decide(user: User, pull: DataPullRequest, form: DecisionForm) -> None:
    data = form.cleaned_data
    scope = Scope(**form.narrowed_fields()) if data["outcome"] == "approve_narrowed" else None
    actions.request_decide(
        actor=user,
        request=pull,
        outcome=data["outcome"],
        reason=data["reason"],
        scope=scope,
        grantees=list(data["grantees"]),
    )
