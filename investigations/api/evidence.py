"""Evidence in the API: a case's items (list, upload), an item's record and file, and saving a
query's result. Objects from ``access.py`` (404 when invisible), the page's forms for the
values, the actions for every change and every recorded read.
"""

from __future__ import annotations

from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import SignedInAPIRequest

from .. import access, actions
from ..actions.query import results_problem
from ..errors import ResultsUnavailable
from ..forms.evidence import EvidenceUploadForm, SaveResultForm
from ..models import Evidence, EvidenceFormat
from ..models.case import TEXT_MAX, TITLE_MAX
from .serializers import UserRefSerializer
from .views import ChokepointViewSet, _body, _valid


class EvidenceSerializer(serializers.ModelSerializer):
    case_reference = serializers.CharField(source="case.reference", read_only=True)
    uploaded_by = UserRefSerializer(read_only=True)
    superseded_by = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "case",
            "case_reference",
            "kind",
            "title",
            "description",
            "original_name",
            "content_type",
            "size",
            "sha256",
            "version",
            "supersedes",
            "superseded_by",
            "uploaded_by",
            "created_at",
            "integrity",
            "verified_at",
            "grant",
            "query",
            "scope",
            "result_digest",
            "format",
        ]
        read_only_fields = fields

    def get_superseded_by(self, evidence: Evidence) -> int | None:
        newer = getattr(evidence, "superseded_by", None)
        return newer.pk if newer is not None else None


class EvidenceUploadSerializer(serializers.Serializer):
    """``multipart/form-data``: the file and what it is."""

    file = serializers.FileField()
    title = serializers.CharField(max_length=TITLE_MAX, required=False, allow_blank=True)
    description = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)
    supersedes = serializers.IntegerField(required=False, help_text="Id of the item this is a new version of.")


class SaveResultSerializer(serializers.Serializer):
    formats = serializers.ListField(
        child=serializers.ChoiceField(choices=EvidenceFormat.choices), default=["csv", "json"]
    )
    title = serializers.CharField(max_length=TITLE_MAX, required=False, allow_blank=True)


FILE = OpenApiResponse(OpenApiTypes.BINARY, description="The stored bytes; header X-Evidence-SHA256 has the hash.")


def _file_response(handle, evidence: Evidence) -> FileResponse:
    response = FileResponse(
        handle, as_attachment=True, filename=evidence.original_name, content_type=evidence.content_type
    )
    response["X-Evidence-SHA256"] = evidence.sha256
    return response


class CaseEvidenceView(APIView):
    """``/cases/{id}/evidence/``: the items of the case the caller may read; the team uploads."""

    parser_classes = [MultiPartParser]

    @extend_schema(responses=EvidenceSerializer(many=True), summary="Evidence of a case the caller may read")
    def get(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id)
        items = access.case_evidence_for(request.user, case).select_related("case").order_by("-created_at", "-id")
        return Response(EvidenceSerializer(items, many=True).data)

    @extend_schema(
        request={"multipart/form-data": EvidenceUploadSerializer},
        responses={201: EvidenceSerializer},
        summary="Team: upload a document or a new version (SHA-256 computed by Custos)",
    )
    def post(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id, perm=access.CONTRIBUTE_PERM)
        form = _valid(EvidenceUploadForm(request.data, request.FILES))
        previous = None
        if form.cleaned_data["supersedes"]:
            try:
                previous = access.get_evidence_for(request.user, form.cleaned_data["supersedes"])
            except Http404:
                raise serializers.ValidationError({"supersedes": ["There is no such item on this case."]}) from None
        evidence = actions.evidence_upload(
            actor=request.user,
            case=case,
            upload=form.cleaned_data["file"],
            title=form.cleaned_data["title"],
            description=form.cleaned_data["description"],
            supersedes=previous,
        )
        return Response(EvidenceSerializer(evidence).data, status=status.HTTP_201_CREATED)


@extend_schema_view(retrieve=extend_schema(summary="An evidence item's record: hash, origin, versions (recorded)"))
class EvidenceViewSet(ChokepointViewSet):
    queryset = Evidence.objects.none()
    serializer_class = EvidenceSerializer
    http_method_names = ["get", "head", "options"]

    def retrieve(self, request: SignedInAPIRequest, id: str) -> Response:
        evidence = access.get_evidence_for(request.user, id)
        actions.evidence_view(actor=request.user, evidence=evidence, via="api")
        return Response(EvidenceSerializer(evidence).data)

    @extend_schema(responses={200: FILE}, summary="Download the stored file (recorded)")
    @action(detail=True, methods=["get"])
    def download(self, request: SignedInAPIRequest, id: str) -> FileResponse:
        evidence = access.get_evidence_for(request.user, id)
        return _file_response(actions.evidence_download(actor=request.user, evidence=evidence, via="api"), evidence)


class QueryEvidenceView(APIView):
    """``/queries/{id}/evidence/``: a grantee saves the result while the grant is in force."""

    @extend_schema(
        request=SaveResultSerializer,
        responses={201: EvidenceSerializer(many=True)},
        summary="Grantee: save a query's result as case evidence (CSV and/or JSON)",
    )
    def post(self, request: SignedInAPIRequest, id: str) -> Response:
        query = access.get_query_for(request.user, id)
        problem = results_problem(request.user, query)
        if problem:
            raise ResultsUnavailable(problem)
        values = _body(request, SaveResultSerializer)
        form = _valid(SaveResultForm({"formats": values["formats"], "title": values.get("title", "")}))
        saved = actions.evidence_save_query_result(actor=request.user, query=query, **form.cleaned_data)
        return Response(EvidenceSerializer(saved, many=True).data, status=status.HTTP_201_CREATED)
