"""Producing the case report (``case_report.py`` says what it holds and who gets which version)."""

from __future__ import annotations

import hashlib

from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import User
from audit.events import Action

from .. import case_report
from ..access import report_audience
from ..models import Case, CaseReport
from .locks import retry_on_conflict


@retry_on_conflict
def case_report_produce(*, actor: User, case: Case) -> CaseReport:
    """Produce the case report for ``actor`` (who got ``case`` from ``access.get_case_for``) and keep it.

    The page is read and rendered first (rendering takes a moment and locks nothing); then one
    transaction stores the HTML and the PDF and records ``case_report.produced`` with the PDF's
    SHA-256 and the range of ledger events the report tells, which the report states. A later
    download serves the stored bytes, so they hash to what the ledger says.
    """
    audience = report_audience(actor, case)
    span = case_report.ledger_range(case, actor)
    produced_at = timezone.now()
    html = case_report.render_html(
        case_report.context(user=actor, case=case, audience=audience, span=span, produced_at=produced_at)
    )
    pdf = case_report.render_pdf(html)
    with transaction.atomic():
        report = CaseReport.objects.create(
            case=case,
            audience=audience,
            produced_by=actor,
            produced_at=produced_at,
            first_seq=span.first,
            last_seq=span.last,
            html=html,
            html_sha256=hashlib.sha256(html.encode("utf-8")).hexdigest(),
            pdf=pdf,
            sha256=hashlib.sha256(pdf).hexdigest(),
        )
        audit.record(
            action=Action.CASE_REPORT_PRODUCED,
            actor=actor,
            target=report,
            case_reference=case.reference,
            details={
                "report": report.pk,
                "audience": audience,
                "sha256": report.sha256,
                "bytes": len(pdf),
                "html_sha256": report.html_sha256,
                "first_seq": span.first,
                "last_seq": span.last,
                "events": span.events,
            },
        )
    return report


def case_report_read(*, actor: User, report: CaseReport, via: str) -> CaseReport:
    """Record that ``actor`` (who got ``report`` from ``access.get_case_report_for``) reads it, as
    ``via`` ("html", "pdf", "api_pdf"). The report holds subjects, grants and what was queried:
    reading it is an event like reading results or evidence (invariant 7). Recorded before the
    bytes are served; if the ledger cannot be written, nothing is served."""
    audit.record(
        action=Action.CASE_REPORT_READ,
        actor=actor,
        target=report,
        case_reference=report.case.reference,
        details={"report": report.pk, "audience": report.audience, "via": via, "sha256": report.sha256},
    )
    return report
