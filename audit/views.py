"""Auditor pages. Each view passes ``require_auditor`` first and records what was read.

The event is recorded after the page's rows are fetched but before anything is sent, so a
page is never shown unless its viewing is on the ledger.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.http import SignedInRequest
from config.listing import count_up_to

from . import checkpoints, runs, sealer
from .access import require_auditor
from .events import Action
from .export import csv_lines, export_rows, jsonl_lines
from .filters import NEWEST_FIRST, OLDEST_FIRST, EventFilter
from .ledger import compute_hash, record
from .models import AuditEvent, ChainHead, VerificationRun, VerificationRunStatus

PAGE_SIZE = 50
LIST_COLUMNS = ("seq", "occurred_at", "actor_username", "action", "target_type", "target_id", "case_reference")


def _positive_int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and 0 < int(value) < 2**63 else None


def _page(events, *, key: int | None, oldest_first: bool = False) -> tuple[list[AuditEvent], int | None]:
    """One keyset page on seq and the key of the next one (None on the last page).

    Newest first: ``key`` is exclusive upper bound (``?before=``); oldest first: exclusive
    lower bound (``?after=``). One query whatever the page size or position.
    """
    if oldest_first:
        events = events.order_by("seq") if key is None else events.filter(seq__gt=key).order_by("seq")
    else:
        events = events.order_by("-seq") if key is None else events.filter(seq__lt=key).order_by("-seq")
    rows = list(events.only(*LIST_COLUMNS)[: PAGE_SIZE + 1])
    if len(rows) > PAGE_SIZE:
        return rows[:PAGE_SIZE], rows[PAGE_SIZE - 1].seq
    return rows, None


def _url_with(request: SignedInRequest, **params) -> str:
    query = request.GET.copy()
    for name, value in params.items():
        query[name] = value
    return "?" + query.urlencode()


def _sorted_url(request: SignedInRequest, sort: str) -> str:
    """The list in the other order, from its first page (the filters kept)."""
    query = request.GET.copy()
    for name in ("before", "after"):
        query.pop(name, None)
    query["sort"] = sort
    return "?" + query.urlencode()


def event_list(request: SignedInRequest) -> HttpResponse:
    require_auditor(request.user)
    listing = EventFilter(request.GET)
    newest_first = listing.newest_first
    key = _positive_int(request.GET.get("before" if newest_first else "after"))
    matching = listing.events()
    events, next_key = _page(matching, key=key, oldest_first=not newest_first)
    filters = listing.used()
    direction = "before" if newest_first else "after"
    record(
        action=Action.AUDIT_VIEWED,
        actor=request.user,
        details={"page": "event_list", "filters": filters, direction: key, "shown": len(events)},
        request=request,
    )
    context = {
        "filter": listing,
        "events": events,
        "newest_first": newest_first,
        "sort_url": _sorted_url(request, OLDEST_FIRST if newest_first else NEWEST_FIRST),
        "matching": count_up_to(matching),
        "filtered": bool(filters),
        "next_url": _url_with(request, **{direction: next_key}) if next_key else None,
    }
    return render(request, "audit/event_list.html", context)


def event_detail(request: SignedInRequest, seq: int) -> HttpResponse:
    require_auditor(request.user)
    event = get_object_or_404(AuditEvent, seq=seq)
    # The events on either side (numbers may have gaps where a writer rolled back).
    previous = AuditEvent.objects.filter(seq__lt=seq).order_by("-seq").values_list("seq", "hash").first()
    following = AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("seq", "hash").first()
    sealed = event.hash is not None
    record(
        action=Action.AUDIT_VIEWED,
        actor=request.user,
        target=("audit.auditevent", seq),
        details={"page": "event_detail", "seq": seq},
        request=request,
    )
    context = {
        "event": event,
        "sealed": sealed,
        "hash_ok": sealed and compute_hash(event) == event.hash,
        "link_ok": previous[1] == event.prev_hash if sealed and previous else None,
        "previous": previous,
        "following": following,
    }
    return render(request, "audit/event_detail.html", context)


def case_timeline(request: SignedInRequest, reference: str) -> HttpResponse:
    require_auditor(request.user)
    after = _positive_int(request.GET.get("after"))
    events, next_key = _page(AuditEvent.objects.for_case(reference), key=after, oldest_first=True)
    record(
        action=Action.AUDIT_VIEWED,
        actor=request.user,
        details={"page": "case_timeline", "filters": {"case_reference": reference}, "after": after},
        request=request,
    )
    context = {
        "reference": reference,
        "events": events,
        "next_url": _url_with(request, after=next_key) if next_key else None,
    }
    return render(request, "audit/case_timeline.html", context)


def verification(request: SignedInRequest) -> HttpResponse:
    require_auditor(request.user)
    last_run = runs.last_outcome()
    last_checkpoint = AuditEvent.objects.filter(action=Action.AUDIT_CHECKPOINT).order_by("-seq").first()
    record(action=Action.AUDIT_VIEWED, actor=request.user, details={"page": "verification"}, request=request)
    context = {
        "last_run": last_run,
        "current_run": runs.current_run(),
        "last_checkpoint": last_checkpoint,
        "head": ChainHead.objects.filter(pk=1).first(),
        "waiting": sealer.oldest_unsealed(),
        "public_key": _public_key(),
    }
    return render(request, "audit/verification.html", context)


@require_POST
def verification_start(request: SignedInRequest) -> HttpResponse:
    """The "Verify now" button: queue a verification on the worker; the page follows its progress."""
    require_auditor(request.user)
    if runs.current_run() is None:
        runs.run_start(actor=request.user)
        messages.success(request, "Verification started. Its outcome is recorded in the audit trail.")
    else:
        messages.info(request, "A verification is already under way; its progress is below.")
    return redirect("audit:verification")


@require_GET
def verification_status(request: SignedInRequest, pk: int) -> JsonResponse:
    require_auditor(request.user)
    run = get_object_or_404(VerificationRun, pk=pk)
    return JsonResponse(
        {
            "status": run.status,
            "status_label": run.get_status_display(),
            "done": run.status == VerificationRunStatus.DONE,
            "checked": run.checked,
            "total": run.total,
            "percent": run.percent,
            "ok": run.ok,
            "summary": run.summary,
        }
    )


def _public_key() -> str:
    try:
        return checkpoints.published_public_key()
    except ImproperlyConfigured:
        return "(no signing key configured: set AUDIT_SIGNING_KEY)"


def export(request: SignedInRequest) -> HttpResponse | StreamingHttpResponse:
    """Stream the filtered range as CSV or JSON lines; the export is recorded before streaming."""
    require_auditor(request.user)
    listing = EventFilter(request.GET)
    file_format = "jsonl" if request.GET.get("format") == "jsonl" else "csv"
    events = listing.events()
    record(
        action=Action.AUDIT_EXPORTED,
        actor=request.user,
        details={"format": file_format, "filters": listing.used()},
        request=request,
    )
    lines = jsonl_lines(export_rows(events)) if file_format == "jsonl" else csv_lines(export_rows(events))
    content_type = "application/x-ndjson" if file_format == "jsonl" else "text/csv; charset=utf-8"
    response = StreamingHttpResponse(lines, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{file_format}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
