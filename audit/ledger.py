"""The only writer of the audit trail.

Hash of an event (encoding version 1)
-------------------------------------

::

    hash = hex( SHA-256( b"custos.audit.event.v1\\x00" || canonical ) )

``canonical`` is the UTF-8 JSON array, in this order, of::

    [seq, occurred_at, actor_id, actor_ref, actor_username, action, target_type,
     target_id, case_reference, details, ip, user_agent, request_id, prev_hash]

encoded with ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=True)``
(so it is pure ASCII, object keys sorted, no whitespace). ``occurred_at`` is UTC as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; ``actor_id`` is an integer or null; ``details`` is a JSON
object holding only strings, integers, booleans, null, lists and objects (floats and other
types are stored as strings by :func:`clean_details`, so the database's JSON round trip
cannot change the encoding). The first event's ``prev_hash`` is 64 zeros; every later
event's ``prev_hash`` is the previous event's ``hash``.

The hash is a plain domain-separated SHA-256, not an HMAC, so anyone may recompute it
without a secret. Authenticity comes from the Ed25519-signed checkpoints
(``audit.checkpoints``): a party who rewrites and re-hashes the chain cannot forge them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Model
from django.utils import timezone

from .actions import Action
from .context import current_meta, meta_from_request
from .models import AuditEvent, ChainHead

GENESIS_HASH = "0" * 64
EVENT_DOMAIN = b"custos.audit.event.v1\x00"

# The order of the hashed fields; verification streams exactly these columns.
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_ref",
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
)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hash_values(values: Sequence[Any]) -> str:
    """The hash of one event given its values in ``HASHED_FIELDS`` order."""
    fields = list(values)
    fields[1] = format_time(fields[1])
    encoded = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(EVENT_DOMAIN + encoded.encode("ascii")).hexdigest()


def compute_hash(event: AuditEvent) -> str:
    return hash_values([getattr(event, name) for name in HASHED_FIELDS])


def clean_text(value: str, max_length: int | None = None) -> str:
    """Text the database and the canonical encoding both accept unchanged.

    NUL is refused by PostgreSQL and lone surrogates cannot be encoded, so they are
    replaced rather than failing the caller's action.
    """
    text = str(value).replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return text[:max_length] if max_length else text


def clean_details(value: Any) -> Any:
    """Make ``details`` survive the database's JSON round trip unchanged."""
    if isinstance(value, dict):
        return {clean_text(key): clean_details(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [clean_details(item) for item in items]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return format_time(value) if timezone.is_aware(value) else value.isoformat()
    return clean_text(value)


def _target_parts(target: Model | tuple[str, Any] | None) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, tuple):
        return str(target[0]), str(target[1])
    return target._meta.label_lower, str(target.pk)


def _advance_head() -> tuple[int, str, datetime]:
    """Lock the chain head and move it one step; return (new seq, prev hash, time).

    One ``UPDATE ... RETURNING`` takes the head row's lock (the same lock as
    ``SELECT ... FOR UPDATE``) and reads the time under it, so sequence numbers and
    timestamps both follow commit order. The lock is held until the caller's transaction
    ends.
    """
    for _attempt in range(2):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE audit_chainhead SET seq = seq + 1, "
                    "occurred_at = GREATEST(clock_timestamp(), occurred_at) "
                    "WHERE id = 1 RETURNING seq, hash, occurred_at"
                )
                row = cursor.fetchone()
            if row:
                return row[0], row[1], row[2]
        elif ChainHead.objects.filter(pk=1).update(seq=F("seq") + 1):
            # SQLite: the write lock is already held (BEGIN IMMEDIATE / this UPDATE).
            head = ChainHead.objects.get(pk=1)
            moment = timezone.now()
            if head.occurred_at and head.occurred_at > moment:
                moment = head.occurred_at
            return head.seq, head.hash, moment
        # No head row (a fresh or flushed database): create the genesis head, then retry.
        # If events exist without a head, the insert of seq 1 fails on UNIQUE: fail closed.
        ChainHead.objects.bulk_create([ChainHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
    raise RuntimeError("audit chain head could not be created")


def record(
    *,
    action: Action | str,
    actor=None,
    target: Model | tuple[str, Any] | None = None,
    case_reference: str = "",
    details: dict[str, Any] | None = None,
    request=None,
) -> AuditEvent:
    """Append one event to the ledger, inside the caller's transaction.

    Appends are serialised on the chain-head row: the head is locked and advanced, the
    event inserted with ``prev_hash`` = the head's hash, and the head given the new hash.
    Two writers can therefore never fork the chain or leave a gap, and UNIQUE(seq) and
    UNIQUE(prev_hash) back that up in the database. If the caller's transaction rolls back,
    the event and the head move vanish together: a rolled-back action leaves no event.

    Trade-off: the head lock is held until the *caller's* transaction commits, so writers
    of audit events are serialised for the rest of their business transaction. Keep
    transactions that record events short. A batched sequencer (events staged, then
    chained by one writer) would let writers run in parallel, at the cost of the event not
    being chained when the business transaction commits; we chose the simpler, stricter
    design.
    """
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}; add it to audit.actions.Action")
    meta = meta_from_request(request) if request is not None else current_meta()
    target_type, target_id = _target_parts(target)
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    with transaction.atomic(savepoint=False):
        seq, prev_hash, occurred_at = _advance_head()
        event = AuditEvent(
            seq=seq,
            occurred_at=occurred_at,
            actor_id=actor.pk if authenticated else None,
            actor_ref=str(actor.pk) if authenticated else "",
            actor_username=clean_text(actor.get_username(), 150) if authenticated else "",
            action=str(action),
            target_type=clean_text(target_type, 100),
            target_id=clean_text(target_id, 64),
            case_reference=clean_text(case_reference or "", 32),
            details=clean_details(details or {}),
            ip=clean_text(meta.ip, 64),
            user_agent=clean_text(meta.user_agent, 400),
            request_id=clean_text(meta.request_id, 64),
            prev_hash=prev_hash,
        )
        event.hash = compute_hash(event)
        event._ledger_append = True
        event.save(force_insert=True)
        ChainHead.objects.filter(pk=1).update(hash=event.hash, occurred_at=occurred_at)
    return event
