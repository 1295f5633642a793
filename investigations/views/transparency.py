"""The transparency report for auditors: figures, charts (server-rendered SVG), CSV and signed JSON.

Every form of the report is recorded (``transparency.report_produced``) with its period, format
and the SHA-256 of the figures, so what was published can be matched to the ledger.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re

import pygal
from csp.decorators import csp_update
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from pygal.style import Style

import audit
from accounts.http import SignedInRequest
from audit.access import require_auditor
from audit.events import Action
from userdata.catalogue import CATEGORY_CHOICES

from .. import transparency
from ..forms.oversight import TransparencyForm
from ..models import AlertKind
from ..models.case import CaseType
from ..models.query import DenialReason

CHART_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1d2733",
    foreground_strong="#1d2733",
    foreground_subtle="#5b6775",
    colors=("#1f5f8b", "#b35c00", "#2e7d32", "#8e2434", "#5d4b8a", "#607080", "#9a7b00"),
    font_family="system-ui, sans-serif",
)
LABELS = {
    "approved": "Approved",
    "approved_narrowed": "Approved, narrowed",
    "rejected": "Rejected",
    "returned": "Returned for changes",
    "lapsed": "Lapsed",
    "withdrawn": "Withdrawn",
    "pending": "Pending",
}


def _report(request: SignedInRequest, fmt: str) -> tuple[TransparencyForm, dict]:
    require_auditor(request.user)
    form = TransparencyForm(request.GET or None, today=timezone.now().date())
    document = transparency.report(form.period(), timezone.now())
    digest = hashlib.sha256(transparency.canonical(document["figures"])).hexdigest()
    audit.record(
        action=Action.TRANSPARENCY_REPORT,
        actor=request.user,
        details={"period": document["period"], "format": fmt, "figures_sha256": digest},
        request=request,
    )
    return form, document


def _query(request: SignedInRequest) -> str:
    return request.GET.urlencode()


def report_page(request: SignedInRequest) -> HttpResponse:
    form, document = _report(request, "html")
    query = _query(request)
    charts = [
        (name, title, f"{reverse('investigations:transparency_chart', args=[name])}?{query}")
        for name, title in CHARTS.items()
    ]
    context = {
        "form": form,
        "document": document,
        "figures": document["figures"],
        "labels": LABELS,
        "charts": charts,
        "query": query,
        "suppressed": transparency.SUPPRESSED,
        **_rows(document["figures"]),
    }
    return render(request, "investigations/transparency.html", context, status=400 if form.errors else 200)


def _rows(figures: dict) -> dict:
    """The tables as (label, values) rows, in the words people use."""
    categories = dict(CATEGORY_CHOICES)
    protected = figures["protected_requests_by_outcome"]
    return {
        "case_rows": [(CaseType(key).label, value) for key, value in figures["cases_opened_by_type"].items()],
        "outcome_rows": [(LABELS[key], value, protected[key]) for key, value in figures["requests_by_outcome"].items()],
        "category_rows": [
            (categories.get(key, key), list(counts.values()))
            for key, counts in figures["requests_by_category_and_outcome"].items()
        ],
        "denial_rows": [(DenialReason(key).label, value) for key, value in figures["denials_by_reason"].items()],
        "alert_rows": [
            (dict(AlertKind.choices).get(key, key), value) for key, value in figures["alerts_raised_by_kind"].items()
        ],
    }


def report_json(request: SignedInRequest) -> HttpResponse:
    _, document = _report(request, "json")
    body = json.dumps(transparency.signed(document), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="custos-transparency-{_slug(document)}.json"'
    return response


def report_csv(request: SignedInRequest) -> HttpResponse:
    _, document = _report(request, "csv")
    buffer = io.StringIO()
    csv.writer(buffer).writerows(transparency.csv_rows(document))
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="custos-transparency-{_slug(document)}.csv"'
    return response


def _slug(document: dict) -> str:
    return f"{document['period']['start']}-to-{document['period']['end']}"


def _value(value) -> float | None:
    """Suppressed cells are left out of a chart (pygal skips None), never drawn as a number."""
    return value if isinstance(value, int) else None


def _outcome_chart(figures: dict) -> pygal.Graph:
    chart = pygal.HorizontalBar(style=CHART_STYLE, js=[], show_legend=False, print_values=True)
    chart.x_labels = [LABELS[outcome] for outcome in figures["requests_by_outcome"]]
    chart.add("Requests", [_value(value) for value in figures["requests_by_outcome"].values()])
    return chart


def _case_chart(figures: dict) -> pygal.Graph:
    chart = pygal.Bar(style=CHART_STYLE, js=[], show_legend=False, print_values=True)
    chart.x_labels = [CaseType(key).label for key in figures["cases_opened_by_type"]]
    chart.add("Cases", [_value(value) for value in figures["cases_opened_by_type"].values()])
    return chart


def _category_chart(figures: dict) -> pygal.Graph:
    chart = pygal.StackedBar(style=CHART_STYLE, js=[], legend_at_bottom=True)
    categories = figures["requests_by_category_and_outcome"]
    labels = dict(CATEGORY_CHOICES)
    chart.x_labels = [labels.get(category, category) for category in categories]
    for outcome in ("approved", "approved_narrowed", "rejected", "returned", "lapsed", "withdrawn", "pending"):
        chart.add(LABELS[outcome], [_value(counts[outcome]) for counts in categories.values()])
    return chart


SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)
CHARTS = {
    "outcomes": "Requests by outcome",
    "cases": "Cases opened by type",
    "categories": "Requests by data category and outcome",
}
BUILDERS = {"outcomes": _outcome_chart, "cases": _case_chart, "categories": _category_chart}


# pygal's SVG carries its own <style>; it is an image with no script and no user text.
@csp_update({"style-src": ["'unsafe-inline'"]})  # type: ignore[arg-type]  # django-csp types views as (request) only
def report_chart(request: SignedInRequest, chart: str) -> HttpResponse:
    if chart not in BUILDERS:
        require_auditor(request.user)
        return HttpResponse(status=404)
    _, document = _report(request, f"svg:{chart}")
    graph = BUILDERS[chart](document["figures"])
    graph.title = f"{CHARTS[chart]}, {document['period']['label']}"
    # pygal always embeds its tooltip configuration as a script; an image needs none.
    svg = SCRIPT.sub("", graph.render(is_unicode=True))
    return HttpResponse(svg, content_type="image/svg+xml")
