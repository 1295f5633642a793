"""The case report and the legal hold in the API.

Produce a report, list a case's reports, read one's record, download its PDF; place or lift a
case's legal hold. The same chokepoints as the pages (``access.get_case_for``,
``access.get_case_report_for``, ``access.get_case_for_legal_hold``) and the same actions; the
PDF is the stored bytes, whose SHA-256 the ledger holds.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from accounts.http import SignedInAPIRequest
from accounts.stepup import api_step_up_required

from .. import access, actions
from ..models import CaseReport, ReportAudience
from ..models.case import TEXT_MAX
from ..views.report import pdf_response
from .serializers import UserRefSerializer
from .views import _body


class CaseReportSerializer(serializers.ModelSerializer):
    case_reference = serializers.CharField(source="case.reference", read_only=True)
    produced_by = UserRefSerializer(read_only=True)
    audience = serializers.ChoiceField(choices=ReportAudience.choices, read_only=True)
    sha256 = serializers.CharField(read_only=True, help_text="SHA-256 of the PDF, as the ledger recorded it.")
    pdf = serializers.SerializerMethodField(help_text="Where to download the PDF.")
    html = serializers.SerializerMethodField(help_text="The printable page the PDF was rendered from.")

    class Meta:
        model = CaseReport
        fields = [
            "id",
            "case",
            "case_reference",
            "audience",
            "produced_by",
            "produced_at",
            "first_seq",
            "last_seq",
            "sha256",
            "html_sha256",
            "pdf",
            "html",
        ]
        read_only_fields = fields

    def get_pdf(self, report: CaseReport) -> str:
        return reverse("api:case-report-pdf", args=[report.pk])

    def get_html(self, report: CaseReport) -> str:
        return reverse("investigations:case_report_html", args=[report.pk])


class PDFRenderer(BaseRenderer):
    """Lets a caller ask for ``application/pdf``; errors still go out as JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


class CaseReportListView(APIView):
    """``/cases/{id}/reports/``: the case's reports the caller may open; produce a new one."""

    @extend_schema(responses=CaseReportSerializer(many=True), summary="Reports of a case (the caller's version)")
    def get(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id)
        return Response(CaseReportSerializer(access.case_reports_visible_to(request.user, case), many=True).data)

    @extend_schema(
        request=None,
        responses={201: CaseReportSerializer},
        summary="Produce the case report (team or legal version, by who asks); recorded with its hash",
    )
    def post(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id)
        report = actions.case_report_produce(actor=request.user, case=case)
        return Response(CaseReportSerializer(report).data, status=status.HTTP_201_CREATED)


class CaseReportView(APIView):
    @extend_schema(responses=CaseReportSerializer, summary="A produced case report's record")
    def get(self, request: SignedInAPIRequest, id: str) -> Response:
        return Response(CaseReportSerializer(access.get_case_report_for(request.user, id)).data)


class CaseReportPdfView(APIView):
    renderer_classes = [JSONRenderer, PDFRenderer]

    @extend_schema(
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The stored PDF.")},
        summary="Download a produced case report's PDF (the bytes whose SHA-256 the ledger holds)",
    )
    def get(self, request: SignedInAPIRequest, id: str):
        report = access.get_case_report_for(request.user, id)
        return pdf_response(actions.case_report_read(actor=request.user, report=report, via="api_pdf"))


class LegalHoldWriteSerializer(serializers.Serializer):
    hold = serializers.BooleanField(help_text="true to place the hold, false to lift it.")
    reason = serializers.CharField(max_length=TEXT_MAX, help_text="Recorded in the ledger with the change.")


class LegalHoldSerializer(serializers.Serializer):
    legal_hold = serializers.BooleanField()
    reason = serializers.CharField(source="legal_hold_reason")
    placed_by = UserRefSerializer(source="legal_hold_by", allow_null=True)
    placed_at = serializers.DateTimeField(source="legal_hold_at", allow_null=True)
    lift_proposed_by = UserRefSerializer(
        source="legal_hold_lift_by",
        allow_null=True,
        help_text="Lifting takes two legal reviewers: who proposed it (the hold stays until another confirms).",
    )
    lift_proposed_at = serializers.DateTimeField(source="legal_hold_lift_at", allow_null=True)
    lift_reason = serializers.CharField(source="legal_hold_lift_reason")


class CaseLegalHoldView(APIView):
    """``/cases/{id}/legal-hold/``: a legal reviewer independent of the case places or lifts its hold."""

    @extend_schema(
        request=LegalHoldWriteSerializer,
        responses=LegalHoldSerializer,
        summary=(
            "Legal reviewer: place the case's legal hold (keeps its evidence past retention), or lift it "
            "(hold false: the first legal reviewer proposes, a second one confirms)"
        ),
    )
    @api_step_up_required
    def post(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for_legal_hold(request.user, id)
        values = _body(request, LegalHoldWriteSerializer)
        if not values["hold"]:
            request.step_up.demand()  # lifting (proposing or confirming) needs a token with a recent code
        change = actions.case_legal_hold_set if values["hold"] else actions.case_legal_hold_lift
        return Response(LegalHoldSerializer(change(actor=request.user, case=case, reason=values["reason"])).data)
