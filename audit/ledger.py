"""The only writer of the audit trail, and its verifier.

Hash of an event (documented encoding, version 1)::

    hash = SHA-256( b"custos.audit.v1\\x00" + canonical_json(event fields) )

where the fields are seq, occurred_at (ISO 8601, UTC, microseconds), actor_ref,
actor_username, action, target_type, target_id, case_reference, details, ip, user_agent,
request_id and prev_hash; canonical JSON is ``json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8. The first event's prev_hash
is 64 zeros.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from .actions import Action
from .context import current_meta
from .models import AuditEvent, ChainHead

GENESIS_HASH = "0" * 64
DOMAIN = b"custos.audit.v1\x00"


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def event_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_ref": event.actor_ref,
        "actor_username": event.actor_username,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "case_reference": event.case_reference,
        "details": event.details,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
    }


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(DOMAIN + canonical_bytes(event_fields(event))).hexdigest()


def _target_parts(target: Model | tuple[str, str] | None) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, tuple):
        return target[0], str(target[1])
    return target._meta.label_lower, str(target.pk)


def record(
    *,
    action: Action | str,
    actor=None,
    target: Model | tuple[str, str] | None = None,
    case_reference: str = "",
    details: dict[str, Any] | None = None,
    request=None,
) -> AuditEvent:
    """Append one event to the ledger, inside the caller's transaction.

    Appends are serialised on the chain head row (``SELECT ... FOR UPDATE``), so two
    concurrent writers can never fork the chain or leave a gap; if the caller's transaction
    rolls back, the event and the head move disappear together.
    """
    meta = current_meta()
    target_type, target_id = _target_parts(target)
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().get(pk=1)
        event = AuditEvent(
            seq=head.seq + 1,
            occurred_at=timezone.now().astimezone(UTC),
            actor=actor if authenticated else None,
            actor_ref=str(actor.pk) if authenticated else "",
            actor_username=actor.get_username() if authenticated else "",
            action=str(action),
            target_type=target_type,
            target_id=target_id,
            case_reference=case_reference or "",
            details=json.loads(canonical_bytes(details or {})),
            ip=request.META.get("REMOTE_ADDR", "") if request is not None else meta.ip,
            user_agent=(request.META.get("HTTP_USER_AGENT", "")[:400] if request is not None else meta.user_agent),
            request_id=getattr(request, "request_id", "") if request is not None else meta.request_id,
            prev_hash=head.hash,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        ChainHead.objects.filter(pk=1).update(seq=event.seq, hash=event.hash)
    return event


def now_utc() -> datetime:
    return timezone.now().astimezone(UTC)
