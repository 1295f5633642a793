"""The case report: one document telling what a case did, for legal review or closure.

Purpose and allegation, the team over time, every request with its decisions (requested
against approved), each grant's scope report (approved against queried, ``scope_diff``),
evidence with hashes, tasks, notes and the timeline, with the range of ledger events it tells.

What it shows of requests comes from the same chokepoints as the request pages
(``access.subjects_shown_to``, ``access.decisions_shown_to``), so the case team's version
holds nothing that depends on the user-data store or the protected registry before a
decision (invariant 10); legal reviewers off the team get everything.

The HTML is one standalone page (``templates/investigations/case_report.html``) with its
own print stylesheet; the PDF is rendered from those very bytes by WeasyPrint, offline: the
renderer fetches nothing but that stylesheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.templatetags.static import static

from accounts.models import User

from . import access, timeline
from .actions.oversight import scope_diff, unused_scope
from .gateway import DIRECT_KINDS
from .models import Case, DataPullRequest, Evidence, Grant, ReportAudience
from .models.request import APPROVING_OUTCOMES, RequestStatus

STYLESHEET = "css/report.css"
# The renderer resolves the page's relative links against this made-up origin; nothing is
# fetched from it (``_Fetcher``).
RENDER_BASE = "https://case-report.invalid/"


@dataclass(frozen=True)
class LedgerRange:
    first: int
    last: int
    events: int


def ledger_range(case: Case, user: User) -> LedgerRange:
    """The first and last ledger events the report tells: the case's timeline events as ``user`` sees them, now.

    The timeline's events, not every event naming the case: a lookup, a denial, an alert or an
    approval withheld from the team is not the team's to see, and a range that counted it
    would tell the team it happened.
    """
    events = timeline.case_events(case, viewer=user)
    seqs = events.values_list("seq", flat=True)
    first, last = seqs.order_by("seq").first(), seqs.order_by("-seq").first()
    return LedgerRange(first=first or 0, last=last or 0, events=events.count())


# --- requests, as the producer may see them -----------------------------------------------------


def _requested(user: User, data_request: DataPullRequest) -> dict:
    withheld = access.withholds_resolution(user, data_request)
    return {
        "subjects": access.subjects_shown_to(user, data_request),
        "withheld": withheld,
        "typed_indirect": withheld
        and any(entry.get("kind") not in DIRECT_KINDS for entry in data_request.subject_inputs),
        "categories": list(data_request.categories),
        "window_start": data_request.window_start,
        "window_end": data_request.window_end,
        "duration_hours": data_request.duration_hours,
    }


def _approved(grant: Grant | None) -> dict | None:
    if grant is None:
        return None
    return {
        "subjects": sorted(int(subject) for subject in grant.subjects),
        "categories": list(grant.categories),
        "window_start": grant.window_start,
        "window_end": grant.window_end,
        "duration_hours": round((grant.expires_at - grant.starts_at).total_seconds() / 3600),
    }


def _request_entry(user: User, data_request: DataPullRequest, grants: dict[int, Grant]) -> dict:
    requested = _requested(user, data_request)
    grant = grants.get(data_request.pk) if data_request.status == RequestStatus.APPROVED else None
    return {
        "request": data_request,
        "requested": requested,
        "approved": _approved(grant),
        "grant": grant,
        "protected": data_request.is_protected and not requested["withheld"],
        "decisions": [
            {"decision": decision, "approving": decision.outcome in APPROVING_OUTCOMES}
            for decision in access.decisions_shown_to(user, data_request)
        ],
    }


def _requests(user: User, case: Case, grants: dict[int, Grant]) -> list[dict]:
    data_requests = access.requests_visible_to(user).filter(case=case).select_related("requested_by").order_by("pk")
    return [_request_entry(user, data_request, grants) for data_request in data_requests]


# --- grants and what was queried under them -------------------------------------------------------


def _scope_report(grant: Grant) -> dict:
    """The grant's scope report: the one written when it ended, or the same diff now while it runs."""
    written = getattr(grant, "report", None)
    if written is not None:
        return {
            "content": written.content,
            "unused_subjects": written.unused_subjects,
            "unused_categories": written.unused_categories,
            "ended": written.ended,
            "ended_at": written.ended_at,
        }
    content = scope_diff(grant, list(grant.queries.all()))
    unused_subjects, unused_categories = unused_scope(grant, content)
    return {"content": content, "unused_subjects": unused_subjects, "unused_categories": unused_categories}


def _grants(user: User, case: Case) -> list[Grant]:
    grants = access.grants_visible_to(user).filter(case=case).select_related("request", "report", "revoked_by")
    return list(grants.prefetch_related("grantees", "queries").order_by("pk"))


# --- evidence --------------------------------------------------------------------------------------


def _evidence(case: Case) -> list[Evidence]:
    """Every item of the case, versions included, as records: title, origin, hash, custody, purge.

    Never the content: a saved query result's rows stay readable only by its grant's grantees.
    """
    items = Evidence.objects.filter(case=case).select_related("uploaded_by", "supersedes")
    return list(items.order_by("created_at", "pk"))


# --- the whole report ------------------------------------------------------------------------------


def _team(case: Case) -> list:
    return list(case.memberships.select_related("user").order_by("joined_at", "pk"))


def context(*, user: User, case: Case, audience: str, span: LedgerRange, produced_at: datetime) -> dict:
    """Everything the report shows, read for ``user`` (see the module docstring)."""
    grants = _grants(user, case)
    by_request = {grant.request_id: grant for grant in grants}
    events = timeline.case_events(case, viewer=user).filter(seq__gte=span.first, seq__lte=span.last)
    return {
        "case": case,
        "audience": audience,
        "audience_label": ReportAudience(audience).label,
        "team_version": audience == ReportAudience.TEAM,
        "produced_by": user,
        "produced_at": produced_at,
        "span": span,
        "stylesheet": static(STYLESHEET),
        "tags": [tag.name for tag in case.tags.all()],
        "team": _team(case),
        "requests": _requests(user, case, by_request),
        "grants": [{"grant": grant, "scope": _scope_report(grant)} for grant in grants],
        "evidence": _evidence(case),
        "tasks": list(case.tasks.select_related("assignee").order_by("order", "pk")),
        "notes": list(case.notes.select_related("author").order_by("created_at", "pk")),
        "timeline": [timeline.entry(event) for event in events],
    }


def render_html(report_context: dict) -> str:
    """The report page (its template renders every time in UTC, whoever produces it)."""
    return render_to_string("investigations/case_report.html", report_context)


def render_pdf(html: str) -> bytes:
    """The PDF of ``html`` (the report page's own bytes), with its print stylesheet and nothing else."""
    from weasyprint import HTML  # imported here: loading pango is slow and only this needs it

    return HTML(string=html, base_url=RENDER_BASE, url_fetcher=_fetcher()).write_pdf()


def _fetcher():
    from weasyprint.urls import URLFetcher, URLFetcherResponse, URLFetchingError

    stylesheet_url = RENDER_BASE.rstrip("/") + static(STYLESHEET)

    class Fetcher(URLFetcher):
        """Serves the report's stylesheet from the app's static files; refuses every other URL."""

        def fetch(self, url, headers=None):
            if url != stylesheet_url:
                raise URLFetchingError(f"the case report fetches nothing but its stylesheet, not {url}")
            with open(finders.find(STYLESHEET), "rb") as css:  # type: ignore[arg-type]  # a static file we ship
                return URLFetcherResponse(url, body=css.read(), headers={"Content-Type": "text/css"})

    return Fetcher()
