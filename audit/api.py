"""Auditor endpoints of the API: the events (keyset pages, each read recorded) and verification.

Like the auditor pages, everyone but an active auditor gets 404, and what was read is on the
ledger before the response leaves. Imports no other app.
"""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from accounts.http import SignedInAPIRequest

from . import runs
from .access import require_auditor
from .events import Action
from .filters import ApiEventFilter
from .ledger import record
from .models import AuditEvent, VerificationRun, VerificationRunStatus


class EventSerializer(serializers.ModelSerializer):
    details = serializers.JSONField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "occurred_at",
            "actor",
            "actor_username",
            "action",
            "target_type",
            "target_id",
            "case_reference",
            "details",
            "ip",
            "user_agent",
            "request_id",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class EventPagination(CursorPagination):
    """Keyset pages on ``seq``, newest first: one indexed query wherever the page is."""

    ordering = "-seq"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class EventListView(GenericAPIView):
    """The auditor pages' filters (``audit.filters``, django-filter), under the API's names."""

    serializer_class = EventSerializer
    pagination_class = EventPagination
    queryset = AuditEvent.objects.all()
    filter_backends = [DjangoFilterBackend]
    filterset_class = ApiEventFilter

    @extend_schema(responses=EventSerializer(many=True), summary="Auditors: the audit events (recorded as a read)")
    def get(self, request: SignedInAPIRequest) -> Response:
        require_auditor(request.user)
        filters = ApiEventFilter(request.query_params)
        if not filters.is_valid():
            raise serializers.ValidationError(filters.errors)
        page = self.paginate_queryset(filters.qs)
        with transaction.atomic():
            record(
                action=Action.AUDIT_VIEWED,
                actor=request.user,
                details={
                    "page": "api_event_list",
                    "filters": filters.used(),
                    "cursor": request.query_params.get("cursor", "")[:200],
                    "shown": len(page),
                },
                request=request,
            )
        return self.get_paginated_response(EventSerializer(page, many=True).data)


class OutcomeSerializer(serializers.Serializer):
    """What one verification found (its ledger event's details)."""

    ok = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Events verified.")
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField()
    first_bad_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    checkpoints = serializers.IntegerField(help_text="Signed checkpoints checked.")
    unsealed = serializers.IntegerField(help_text="Newer events committed but not yet chained by the sealer.")
    unsealed_age_seconds = serializers.IntegerField(
        allow_null=True, help_text="Age of the oldest of those, in seconds; null when none waited."
    )
    source = serializers.CharField(help_text="Where it ran: command line, daily schedule, Verify now, API.")
    seq = serializers.IntegerField(help_text="The ledger event that records it.")
    verified_at = serializers.DateTimeField()


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=VerificationRunStatus.choices)
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    checked = serializers.IntegerField()
    total = serializers.IntegerField()
    outcome = OutcomeSerializer(allow_null=True, help_text="Once done: what it found.")


class LastVerificationSerializer(serializers.Serializer):
    last = OutcomeSerializer(allow_null=True, help_text="The latest verification, wherever it ran.")
    current = RunSerializer(allow_null=True, help_text="A verification queued or under way.")


def _outcome(event: AuditEvent | None) -> dict | None:
    if event is None:
        return None
    details = event.details
    return {
        "ok": details.get("ok", event.action == Action.AUDIT_VERIFIED),
        "checked": details.get("count", 0),
        "head_seq": details.get("head_seq", 0),
        "head_hash": details.get("head_hash", ""),
        "first_bad_seq": details.get("bad_seq"),
        "reason": details.get("reason", ""),
        "checkpoints": details.get("checkpoints", 0),
        "unsealed": details.get("unsealed", 0),
        "unsealed_age_seconds": details.get("unsealed_age_seconds"),
        "source": details.get("source", ""),
        "seq": event.seq,
        "verified_at": event.occurred_at,
    }


def _run(run: VerificationRun | None) -> dict | None:
    if run is None:
        return None
    outcome = AuditEvent.objects.filter(seq=run.event_seq).first() if run.event_seq else None
    return {
        "id": run.pk,
        "status": run.status,
        "requested_by": run.requested_by,
        "requested_at": run.requested_at,
        "finished_at": run.finished_at,
        "checked": run.checked,
        "total": run.total,
        "outcome": _outcome(outcome),
    }


class VerifyView(GenericAPIView):
    """Verification runs in the worker, never in a web request (it reads the whole ledger): POST
    queues one (or answers with the one already under way), GET tells the latest outcome."""

    serializer_class = LastVerificationSerializer

    @extend_schema(summary="Auditors: the latest verification of the chain, wherever it ran (recorded as a read)")
    def get(self, request: SignedInAPIRequest) -> Response:
        require_auditor(request.user)
        with transaction.atomic():
            record(
                action=Action.AUDIT_VIEWED, actor=request.user, details={"page": "api_verification"}, request=request
            )
        body = {"last": _outcome(runs.last_outcome()), "current": _run(runs.current_run())}
        return Response(LastVerificationSerializer(body).data)

    @extend_schema(
        request=None,
        responses={202: RunSerializer},
        summary="Auditors: verify the whole chain now, in the worker (a failure alerts the auditors)",
    )
    def post(self, request: SignedInAPIRequest) -> Response:
        require_auditor(request.user)
        run = runs.current_run() or runs.run_start(actor=request.user, source="api")
        url = reverse("api:audit-verify-run", args=[run.pk])
        return Response(RunSerializer(_run(run)).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class VerifyRunView(GenericAPIView):
    serializer_class = RunSerializer

    @extend_schema(
        operation_id="audit_verify_run_retrieve",
        summary="Auditors: one verification run: its progress, then what it found",
    )
    def get(self, request: SignedInAPIRequest, id: str) -> Response:
        require_auditor(request.user)
        run = VerificationRun.objects.filter(pk=int(id)).first() if id.isdigit() and len(id) <= 18 else None
        if run is None:
            raise NotFound()
        return Response(RunSerializer(_run(run)).data)
