"""Query pages: ask, follow, read, download. Thin: access.py finds, actions decide and record."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.http import SignedInRequest
from audit.export import csv_cell
from userdata.catalogue import column_label

from .. import access, actions
from ..actions.query import results_problem
from ..errors import QueryDenied
from ..forms.query import QueryForm
from ..models import DataQuery, QueryStatus

WAITING_MESSAGE = (
    "The query is recorded and waiting: the task queue is unreachable right now. "
    "It will run when the queue is back; there is nothing more to do."
)
DONE = {QueryStatus.SUCCEEDED, QueryStatus.DENIED, QueryStatus.FAILED}


def _grant_queries_context(user, grant) -> dict:
    return {
        "grant": grant,
        "queries": access.queries_visible_to(user).filter(grant=grant),
        "can_query": grant.is_usable_by(user),
    }


@require_http_methods(["GET", "POST"])
def query_create(request: SignedInRequest, grant_pk: int) -> HttpResponse:
    grant = access.get_grant_for_query(request.user, grant_pk)
    form = QueryForm(request.POST or None, grant=grant)
    status, denied = 200, None
    if request.method == "POST" and form.is_valid():
        try:
            query = actions.query_submit(actor=request.user, grant=grant, **form.cleaned_data)
        except QueryDenied as refusal:
            denied, status = refusal.query, 403
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            if getattr(query, "enqueue_failed", False):
                messages.warning(request, WAITING_MESSAGE)
            else:
                messages.success(request, "The query is queued.", extra_tags="query-queued")
            return redirect("investigations:query_detail", pk=query.pk)
    context = {"form": form, "denied": denied, **_grant_queries_context(request.user, grant)}
    return render(request, "investigations/query_form.html", context, status=status)


@require_GET
def query_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    query = access.get_query_for(request.user, pk)
    context = {
        "query": query,
        "done": query.status in DONE,
        "can_see_results": results_problem(request.user, query) is None,
    }
    return render(request, "investigations/query_detail.html", context)


@require_GET
def query_status(request: SignedInRequest, pk: int) -> JsonResponse:
    query = access.get_query_for(request.user, pk)
    can_see_results = query.status == QueryStatus.SUCCEEDED and results_problem(request.user, query) is None
    return JsonResponse(
        {
            "status": query.status,
            "status_label": query.status_label,
            "done": query.status in DONE,
            "row_count": query.row_count,
            "digest": query.digest,
            "denial_reason": query.get_denial_reason_display() if query.denial_reason else "",
            "empty_reason": query.empty_reason,
            "results_url": reverse("investigations:query_results", args=[query.pk]) if can_see_results else "",
        }
    )


def _page_number(request: SignedInRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


@require_GET
def query_results(request: SignedInRequest, pk: int) -> HttpResponse:
    query = access.get_query_for(request.user, pk)
    number = _page_number(request)
    result = actions.results_view(actor=request.user, query=query, page=number)
    page = Paginator(result.rows, query.page_size).get_page(number)
    context = {"query": query, "columns": [column_label(name) for name in result.columns], "page": page}
    return render(request, "investigations/query_results.html", context)


@require_GET
def query_download(request: SignedInRequest, pk: int) -> HttpResponse:
    query: DataQuery = access.get_query_for(request.user, pk)
    result = actions.results_download(actor=request.user, query=query)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="query-{query.pk}-{query.category}.csv"'
    writer = csv.writer(response)
    writer.writerow([csv_cell(column) for column in result.columns])
    for row in result.rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return response
