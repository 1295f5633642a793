"""Pages for grants: my grants, grant detail (with the query panel when it exists), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import select_template

from accounts.http import SignedInRequest
from accounts.stepup import step_up_required

from .. import access, actions
from ..filters import GrantFilter
from ..forms import apply_errors
from ..forms.query import QueryForm
from ..forms.request import ReasonForm
from ..models import Grant, GrantReport
from .listing import filtered_page

QUERY_PANEL = "investigations/_grant_queries.html"
PAGE_SIZE = 25


def grant_list(request: SignedInRequest) -> HttpResponse:
    """Grants the user can see, newest first, each marked when they hold it ("held by me" filters
    to those). Paged by keyset (``listing.filtered_page``); a holder of many grants gets them as a
    test per grant (``access.grants_listed_for``), so a page stops after its rows."""
    held = Grant.grantees.through.objects.filter(grant=OuterRef("pk"), user=request.user)
    listing = access.grant_listing(request.user)
    context = filtered_page(
        request,
        GrantFilter,
        listing.rows,
        counted=listing.counted,
        fetch=lambda grants: grants.select_related("case").annotate(is_mine=Exists(held)),
        default_order=("-starts_at", "-id"),
        page_size=PAGE_SIZE,
    )
    context |= {
        "grants": context["page"].object_list,
        "heading": "My grants" if request.user.is_investigator else "Grants",
    }
    return render(request, "investigations/grant_list.html", context)


def _has_query_panel() -> bool:
    # The query panel belongs to the query pages; until they exist, the grant page goes without.
    try:
        select_template([QUERY_PANEL])
    except TemplateDoesNotExist:
        return False
    return True


def grant_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    grant = access.get_grant_for(request.user, pk)
    can_query = grant.is_usable_by(request.user)
    context = {
        "grant": grant,
        "case": grant.case,
        "grantees": list(grant.grantees.order_by("username")),
        "has_query_panel": _has_query_panel(),
        "queries": grant.queries.select_related("user").order_by("-requested_at", "-id")[:50],
        "can_query": can_query,
        "report": GrantReport.objects.filter(grant=grant).first(),
        # The query form, limited to the frozen scope, right under the scope it is limited to.
        "query_form": QueryForm(grant=grant) if can_query else None,
        **access.grant_flags(request.user, grant),
    }
    return render(request, "investigations/grant_detail.html", context)


@step_up_required
def grant_revoke(request: SignedInRequest, pk: int) -> HttpResponse:
    grant = access.get_grant_for(request.user, pk, perm="revoke")
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and request.step_up.ok:
        try:
            actions.grant_revoke(actor=request.user, grant=grant, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Grant revoked. It stopped working immediately.")
            return redirect("investigations:grant_detail", pk=grant.pk)
    return render(request, "investigations/grant_revoke.html", {"form": form, "grant": grant, "case": grant.case})
