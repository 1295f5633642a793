"""Case pages: list, open, detail, edit, team, notes, close; legal's approval queue."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.http import SignedInRequest
from accounts.stepup import confirm_page, step_up_required

from .. import actions
from ..access import (
    case_flags,
    case_listing,
    case_reports_visible_to,
    cases_awaiting_approval_for,
    get_case_for,
    get_case_to_decide,
    grants_visible_to,
    queries_visible_to,
    tags_visible_to,
)
from ..filters import CaseFilter
from ..forms import apply_errors
from ..forms.case import (
    CaseForm,
    CaseOpenForm,
    ClassifyForm,
    CloseForm,
    MemberAddForm,
    MemberRemoveForm,
    NoteForm,
    RejectForm,
)
from ..models import Case, GrantStatus, TaskStatus
from . import conflict
from .evidence import case_evidence
from .listing import filtered_page

PAGE_SIZE = 25


def _paginate(request: SignedInRequest, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def case_list(request: SignedInRequest) -> HttpResponse:
    """The cases the user may see: filtered, sorted and counted from the URL (bookmarkable),
    paged by keyset (``listing.filtered_page``)."""
    listing = case_listing(request.user)
    context = filtered_page(
        request,
        CaseFilter,
        listing.rows,
        counted=listing.counted,
        fetch=lambda cases: cases.select_related("lead").prefetch_related("tags"),
        default_order=("-created_at", "-id"),
        page_size=PAGE_SIZE,
    )
    context |= {
        "heading": "My cases" if request.user.is_investigator else "Cases",
        "known_tags": tags_visible_to(request.user),
    }
    return render(request, "investigations/case_list.html", context)


def case_create(request: SignedInRequest) -> HttpResponse:
    if not request.user.is_investigator:
        raise PermissionDenied("Only investigators open cases.")
    form = CaseOpenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            case = actions.case_open(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Case {case.reference} opened. It now waits for legal approval.")
            return redirect("investigations:case_detail", pk=case.pk)
    context = {"form": form, "case": None, "known_tags": tags_visible_to(request.user)}
    return render(request, "investigations/case_form.html", context)


def case_detail(
    request: SignedInRequest,
    pk: int,
    note_form: NoteForm | None = None,
    classify_form: ClassifyForm | None = None,
    status: int = 200,
    evidence_form=None,
) -> HttpResponse:
    case = get_case_for(request.user, pk)
    tags = [tag.name for tag in case.tags.all()]
    context = {
        "tags": tags,
        "classify_form": classify_form or ClassifyForm(initial={"priority": case.priority, "tags": ", ".join(tags)}),
        "known_tags": tags_visible_to(request.user),
        "case": case,
        "flags": case_flags(request.user, case),
        "members": case.members.select_related("user").order_by("-is_lead", "user__username"),
        "notes": case.notes.select_related("author"),
        "tasks": case.tasks.select_related("assignee"),
        "today": timezone.localdate(),
        "task_statuses": TaskStatus.choices,
        "requests": case.requests.select_related("requested_by"),
        "grants": _grants_with_queries(request.user, case),
        "note_form": note_form or NoteForm(),
        "case_reports": case_reports_visible_to(request.user, case),
        **case_evidence(request.user, case, evidence_form),
    }
    return render(request, "investigations/case_detail.html", context, status=status)


def _grants_with_queries(user, case: Case) -> list:
    """The case's grants the user may see, each with the query records the user may see."""
    queries = queries_visible_to(user).filter(grant__case=case).order_by("-requested_at", "-id")
    grants = grants_visible_to(user).filter(case=case).order_by("-starts_at", "-id")
    return list(grants.prefetch_related(Prefetch("queries", queryset=queries, to_attr="visible_queries")))


def case_edit(request: SignedInRequest, pk: int) -> HttpResponse:
    case = get_case_for(request.user, pk, perm="change_case")
    if not case_flags(request.user, case)["can_edit"]:
        return conflict(request, "An approved case cannot be edited.", case=case)
    form = CaseForm(request.POST or None, instance=Case.objects.get(pk=case.pk))
    if request.method == "POST" and form.is_valid():
        try:
            actions.case_update(actor=request.user, case=case, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Case updated.")
            return redirect("investigations:case_detail", pk=case.pk)
    return render(request, "investigations/case_form.html", {"form": form, "case": case})


def case_members(request: SignedInRequest, pk: int) -> HttpResponse:
    """The team page: add an investigator; each member has a remove button."""
    case = get_case_for(request.user, pk, perm="manage_team")
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.cleaned_data["username"]
        try:
            actions.case_add_member(actor=request.user, case=case, user=user)
        except ValidationError as error:
            form.add_error("username", error.messages)
        else:
            messages.success(request, f"{user.username} joined the team.")
            return redirect("investigations:case_members", pk=case.pk)
    members = case.members.select_related("user").order_by("-is_lead", "user__username")
    return render(request, "investigations/case_members.html", {"case": case, "form": form, "members": members})


@require_POST
def case_member_remove(request: SignedInRequest, pk: int) -> HttpResponse:
    case = get_case_for(request.user, pk, perm="manage_team")
    form = MemberRemoveForm(request.POST, case=case)
    if not form.is_valid():
        messages.error(request, "Choose a member of the team.")
        return redirect("investigations:case_members", pk=case.pk)
    user = form.cleaned_data["user"]
    try:
        actions.case_remove_member(actor=request.user, case=case, user=user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{user.username} left the team; their access ended at once.")
    return redirect("investigations:case_members", pk=case.pk)


@require_POST
def case_note_add(request: SignedInRequest, pk: int) -> HttpResponse:
    case = get_case_for(request.user, pk, perm="add_note")
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            actions.case_add_note(actor=request.user, case=case, text=form.cleaned_data["text"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return redirect("investigations:case_detail", pk=case.pk)
    return case_detail(request, pk, note_form=form)


@require_POST
def case_classify(request: SignedInRequest, pk: int) -> HttpResponse:
    """Set the priority and tags (the lead, while the case is not over)."""
    case = get_case_for(request.user, pk, perm="change_case")
    if not case.is_active:
        message = f"The case is {case.status_phrase}; its priority and tags no longer change."
        return conflict(request, message, case=case)
    form = ClassifyForm(request.POST)
    if form.is_valid():
        try:
            actions.case_classify(actor=request.user, case=case, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Priority and tags saved.")
            return redirect("investigations:case_detail", pk=case.pk)
    return case_detail(request, pk, classify_form=form, status=400)


def case_close(request: SignedInRequest, pk: int) -> HttpResponse:
    """Close with a summary, after a confirmation that says the grants will be revoked."""
    case = get_case_for(request.user, pk, perm="close_case")
    if not case.may_close:
        return conflict(request, f"The case is {case.status_phrase}.", case=case)
    form = CloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.case_close(
                actor=request.user,
                case=case,
                summary=form.cleaned_data["summary"],
                override_reason=form.cleaned_data["override_reason"],
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Case {case.reference} closed; its grants are revoked.")
            return redirect("investigations:case_detail", pk=case.pk)
    context = {
        "case": case,
        "form": form,
        "active_grants": case.grants.filter(status=GrantStatus.ACTIVE).count(),
        "unfinished_tasks": case.tasks.unfinished(),
    }
    return render(request, "investigations/case_close.html", context)


def _transition_view(
    action: Callable[..., Case], done: str, redirect_to: str = "case_detail", find: Callable[..., Case] = get_case_for
):
    @require_POST
    def view(request: SignedInRequest, pk: int) -> HttpResponse:
        case = find(request.user, pk)
        action(actor=request.user, case=case)
        messages.success(request, done.format(reference=case.reference))
        if redirect_to == "case_queue":
            return redirect("investigations:case_queue")
        return redirect("investigations:case_detail", pk=case.pk)

    view.__doc__ = action.__doc__
    return view


case_resubmit = _transition_view(actions.case_resubmit, "Case {reference} sent back to legal for approval.")
case_hold = _transition_view(actions.case_hold, "Case {reference} is on hold.")
case_resume = _transition_view(actions.case_resume, "Case {reference} resumed.")


@require_POST
@step_up_required
def case_approve(request: SignedInRequest, pk: int) -> HttpResponse:
    """A legal reviewer never involved in the case approves it while pending: it opens for requests."""
    case = get_case_to_decide(request.user, pk, "approve")
    if not case.awaits_approval:
        return conflict(request, f"The case is {case.status_phrase}, not pending approval.", case=case)
    if not request.step_up.ok:
        cancel = reverse("investigations:case_detail", args=[case.pk])
        return confirm_page(request, what=f"Approve case {case.reference}: {case.title}.", cancel_url=cancel)
    actions.case_approve(actor=request.user, case=case)
    messages.success(request, f"Case {case.reference} approved: it is open.")
    return redirect("investigations:case_queue")


@step_up_required
def case_reject(request: SignedInRequest, pk: int) -> HttpResponse:
    case = get_case_to_decide(request.user, pk, "reject")
    if not case.awaits_approval:
        return conflict(request, "The case is not pending approval.", case=case)
    form = RejectForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and request.step_up.ok:
        try:
            actions.case_reject(actor=request.user, case=case, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Case {case.reference} rejected; the lead can revise and resubmit.")
            return redirect("investigations:case_queue")
    return render(request, "investigations/case_reject.html", {"case": case, "form": form})


def case_queue(request: SignedInRequest) -> HttpResponse:
    """Legal's queue: cases awaiting approval (description and team; never user data)."""
    if not request.user.is_reviewer:
        raise PermissionDenied("Only legal reviewers approve cases.")
    cases = (
        cases_awaiting_approval_for(request.user)
        .select_related("lead")
        .prefetch_related("members__user")
        .order_by("updated_at", "id")
    )
    page = _paginate(request, cases)
    return render(request, "investigations/case_queue.html", {"page": page})
