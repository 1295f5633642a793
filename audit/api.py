"""Auditor endpoints of the API: the events (keyset pages, each read recorded) and verification.

Like the auditor pages, everyone but an active auditor gets 404, and what was read is on the
ledger before the response leaves. Imports no other app.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from .access import require_auditor
from .alerts import alert_verification_failed
from .events import Action
from .ledger import record
from .models import AuditEvent
from .verification import verify


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


class EventFilterSerializer(serializers.Serializer):
    actor = serializers.CharField(max_length=150, required=False, help_text="Username.")
    action = serializers.ChoiceField(choices=Action.choices, required=False)
    case = serializers.CharField(max_length=32, required=False, help_text="Case reference, e.g. INV-2026-0042.")
    since = serializers.DateTimeField(required=False, help_text="Events at or after (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Events before (ISO 8601).")

    def validate(self, data: dict) -> dict:
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise serializers.ValidationError({"until": ["Before since."]})
        return data


class EventPagination(CursorPagination):
    """Keyset pages on ``seq``, newest first: one indexed query wherever the page is."""

    ordering = "-seq"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _filtered(filters: dict):
    events = AuditEvent.objects.all()
    exact = {"actor_username": filters.get("actor"), "action": filters.get("action")}
    exact["case_reference"] = filters.get("case")
    events = events.filter(**{field: value for field, value in exact.items() if value})
    if filters.get("since"):
        events = events.filter(occurred_at__gte=filters["since"])
    if filters.get("until"):
        events = events.filter(occurred_at__lt=filters["until"])
    return events


class EventListView(GenericAPIView):
    serializer_class = EventSerializer
    pagination_class = EventPagination
    queryset = AuditEvent.objects.none()

    @extend_schema(
        parameters=[EventFilterSerializer],
        responses=EventSerializer(many=True),
        summary="Auditors: the audit events (recorded as a read)",
    )
    def get(self, request: Request) -> Response:
        require_auditor(request.user)
        known = set(EventFilterSerializer().fields)
        query = EventFilterSerializer(data={k: v for k, v in request.query_params.items() if k in known})
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(_filtered(query.validated_data))
        with transaction.atomic():
            record(
                action=Action.AUDIT_VIEWED,
                actor=request.user,
                details={
                    "page": "api_event_list",
                    "filters": {name: str(value) for name, value in query.validated_data.items()},
                    "cursor": request.query_params.get("cursor", "")[:200],
                    "shown": len(page),
                },
                request=request,
            )
        return self.get_paginated_response(EventSerializer(page, many=True).data)


class VerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Events verified.")
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField()
    first_bad_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    checkpoints = serializers.IntegerField(help_text="Signed checkpoints checked.")


class VerifyView(GenericAPIView):
    serializer_class = VerificationSerializer

    @extend_schema(summary="Auditors: verify the whole chain now (recorded; a failure alerts the auditors)")
    def get(self, request: Request) -> Response:
        require_auditor(request.user)
        # One process: a web server may run threads, and forking a threaded process is unsafe.
        result = verify(workers=1)
        if result.ok:
            with transaction.atomic():
                record(action=Action.AUDIT_VERIFIED, actor=request.user, details=result.as_json(), request=request)
        else:
            alert_verification_failed(result)
        body = {
            "ok": result.ok,
            "checked": result.count,
            "head_seq": result.head_seq,
            "head_hash": result.head_hash,
            "first_bad_seq": result.bad_seq,
            "reason": result.reason,
            "checkpoints": result.checkpoints,
        }
        return Response(VerificationSerializer(body).data)
