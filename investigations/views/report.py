"""Case report pages: produce one (the case page's button), open it as HTML, download its PDF.

Both forms are served from what was stored when the report was produced, so a download is
the same bytes whose SHA-256 the ledger recorded.
"""

from __future__ import annotations

import base64

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.http import SignedInRequest

from .. import actions
from ..access import get_case_for, get_case_report_for
from ..models import CaseReport


@require_POST
def case_report_produce(request: SignedInRequest, pk: int) -> HttpResponse:
    """Whoever sees the case may produce its report (``access.report_audience`` picks the version)."""
    report = actions.case_report_produce(actor=request.user, case=get_case_for(request.user, pk))
    messages.success(
        request, f"Case report {report.pk} produced ({report.get_audience_display()} version), SHA-256 {report.sha256}."
    )
    return redirect(reverse("investigations:case_detail", args=[pk]) + "#case-reports")


def case_report_html(request: SignedInRequest, pk: int) -> HttpResponse:
    """The printable page, as produced."""
    report = actions.case_report_read(actor=request.user, report=get_case_report_for(request.user, pk), via="html")
    return HttpResponse(report.html, content_type="text/html; charset=utf-8")


def case_report_pdf(request: SignedInRequest, pk: int) -> HttpResponse:
    """The PDF, as produced (the ledger holds its SHA-256)."""
    report = actions.case_report_read(actor=request.user, report=get_case_report_for(request.user, pk), via="pdf")
    return pdf_response(report)


def pdf_response(report: CaseReport) -> HttpResponse:
    response = HttpResponse(bytes(report.pdf), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{report.filename}"'
    # RFC 9530: the digest of the bytes served, which the ledger's event names too.
    response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(report.sha256)).decode()}:"
    return response
