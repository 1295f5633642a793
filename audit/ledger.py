"""The only writer of the audit trail.

Hash of an event (encoding version 1)
-------------------------------------

Two steps. First the event's content, everything the caller supplies::

    payload = canonical JSON array of
        [actor_id, actor_ref, actor_username, action, target_type, target_id,
         case_reference, details, ip, user_agent, request_id]
    payload_digest = hex( SHA-256( b"custos.audit.payload.v1\x00" || payload ) )

then its place in the chain::

    hash = hex( SHA-256( "custos.audit.event.v1\n" || prev_hash || "\n" || seq || "\n"
                         || occurred_at || "\n" || payload_digest ) )

Canonical JSON is Custos's one encoding (``audit.canonical``): ``json.dumps(...,
sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` encoded as ASCII (object keys
sorted, no whitespace, every non-ASCII and control character escaped). ``seq`` is decimal; ``occurred_at`` is UTC as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; ``actor_id`` is an integer or null. ``details`` holds only
strings, integers, booleans, null, lists and objects (:func:`clean_details` stores floats
and other types as strings, so the database's JSON round trip cannot change the
encoding). The first event's ``prev_hash`` is 64 zeros; every later event's ``prev_hash``
is the previous event's ``hash``.

Who computes it
---------------

PostgreSQL: writers do not. ``record`` and ``record_many`` insert the event's content with
``seq`` from the table's sequence and the clock read just after, taking no lock that another
writer waits for; the sealer (``audit.sealer``), one at a time, chains the committed events
in ``seq`` order a moment later and fills ``prev_hash`` and ``hash`` once (the only UPDATE
the triggers allow). ``seq`` may have gaps (a rolled-back writer's number); the chain links
by ``prev_hash``, so a gap is not a hole, and a deleted event breaks the next link.

SQLite: writes are serialised by the database, so ``record`` and ``record_many`` chain at
once under the chain head, with the same functions.

The hash is a plain domain-separated SHA-256, not an HMAC, so anyone may recompute it
without a secret. Authenticity comes from the Ed25519-signed checkpoints
(``audit.checkpoints``): a party who rewrites and re-hashes the chain cannot forge them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Model
from django.db.models.functions import Now
from django.utils import timezone

from . import canonical
from .context import current_meta, meta_from_request
from .events import Action
from .models import AuditEvent, ChainHead

GENESIS_HASH = "0" * 64
PAYLOAD_DOMAIN = b"custos.audit.payload.v1\x00"
EVENT_DOMAIN = "custos.audit.event.v1"

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
PAYLOAD_FIELDS = HASHED_FIELDS[2:-1]
# Built once: ``Action.values`` rebuilds the list of choices on every access.
_KNOWN_ACTIONS = frozenset(Action.values)


# ``format_time`` in SQL: PostgreSQL formats ``occurred_at`` itself where events are read in bulk
# (the sealer, the verifier), so no datetime is parsed or formatted in Python.
OCCURRED_AT_SQL = """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def payload_digest(values: Sequence[Any]) -> str:
    """Digest of an event's content, ``values`` in ``PAYLOAD_FIELDS`` order."""
    return hashlib.sha256(PAYLOAD_DOMAIN + canonical.encode(list(values))).hexdigest()


def chain_hash(prev_hash: str, seq: int, occurred_at: str, digest: str) -> str:
    message = f"{EVENT_DOMAIN}\n{prev_hash}\n{seq}\n{occurred_at}\n{digest}"
    return hashlib.sha256(message.encode("ascii")).hexdigest()


def hash_values(values: Sequence[Any]) -> str:
    """The hash of one event given its values in ``HASHED_FIELDS`` order."""
    return chain_hash(values[-1], values[0], format_time(values[1]), payload_digest(values[2:-1]))


def compute_hash(event: AuditEvent) -> str:
    return hash_values([getattr(event, name) for name in HASHED_FIELDS])


def clean_text(value: str, max_length: int | None = None) -> str:
    """Text the database and the canonical encoding both accept unchanged.

    NUL is refused by PostgreSQL and lone surrogates cannot be encoded, so they are
    replaced rather than failing the caller's action.
    """
    text = value if type(value) is str else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():  # only non-ASCII text can hold a lone surrogate: ASCII skips the round trip
        text = text.encode("utf-8", "replace").decode("utf-8")
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


# PostgreSQL: one INSERT, no lock shared with any other writer. ``seq`` comes from the table's
# sequence and the time from the clock read right after it (so two writers' times can be out of
# seq order only by the instant between the two calls; the verifier allows
# AUDIT_TIME_SKEW_SECONDS); the chain columns stay empty until the sealer (``audit.sealer``)
# chains the committed event. ``record`` inserts these values; ``record_statement`` the same
# values once per row of the caller's CTE.
_INSERTED_COLUMNS = ", ".join(("seq", "occurred_at", *PAYLOAD_FIELDS))


def _inserted_values(target_id: str = "%s") -> str:
    return ", ".join(
        (
            "nextval('audit_auditevent_seq')",
            "clock_timestamp()",
            *(
                "%s::jsonb" if name == "details" else target_id if name == "target_id" else "%s"
                for name in PAYLOAD_FIELDS
            ),
        )
    )


_POSTGRES_INSERT = f"""
INSERT INTO audit_auditevent ({_INSERTED_COLUMNS})
VALUES ({_inserted_values()})
RETURNING seq, occurred_at
"""  # noqa: S608 (column names are constants; every value is a parameter)
_POSTGRES_INSERT_FROM = """INSERT INTO audit_auditevent ({columns})
SELECT {values} FROM {source}
RETURNING seq, occurred_at"""


def _insert_params(payload: dict[str, Any], *, with_target_id: bool = True) -> list[Any]:
    params = [payload[name] for name in PAYLOAD_FIELDS]
    params[PAYLOAD_FIELDS.index("details")] = json.dumps(payload["details"])
    if not with_target_id:
        del params[PAYLOAD_FIELDS.index("target_id")]
    return params


def _insert_one_postgres(payload: dict[str, Any]) -> tuple[int, datetime]:
    with connection.cursor() as cursor:
        cursor.execute(_POSTGRES_INSERT, _insert_params(payload))
        seq, occurred_at = cursor.fetchone()
    return seq, occurred_at


def record_statement(
    *,
    source: str,
    action: Action | str,
    actor=None,
    target: Model | tuple[str, Any] | None = None,
    target_key: str | None = None,
    case_reference: str = "",
    details: dict[str, Any] | None = None,
    request=None,
) -> tuple[str, list[Any]]:
    """``record``'s append as SQL for the caller's own statement (PostgreSQL): an INSERT of the
    event once per row of ``source`` (the name of a CTE in that statement, which yields one row
    or none), ``RETURNING seq, occurred_at``, and its parameters.

    For a state change whose event must be written with it in one round trip (a data-modifying
    CTE): the event is the one ``record`` writes for the same arguments, cleaned by the same
    functions, into the same columns, ``seq`` from the same sequence and the time from the
    clock read just after it, and the sealer chains it the same way. The ledger stays the only
    writer: the caller embeds this text and these parameters, unchanged.

    ``target_key``: for a target the same statement inserts (``target`` is then the unsaved
    instance, which gives the type), the column of ``source`` holding its id; the id is stored as
    ``record`` stores ``str(pk)`` of an integer key (its decimal text, at most 64 characters).
    """
    if connection.vendor != "postgresql":
        raise NotImplementedError("record_statement is PostgreSQL's; elsewhere call record")
    for name in (source, target_key or "id"):
        if not name.isidentifier():
            raise ValueError(f"not the name of a CTE or of its column: {name!r}")
    payload = _payload(
        action=action, actor=actor, target=target, case_reference=case_reference, details=details, request=request
    )
    target_id = f'left({source}."{target_key}"::text, 64)' if target_key else "%s"
    sql = _POSTGRES_INSERT_FROM.format(columns=_INSERTED_COLUMNS, values=_inserted_values(target_id), source=source)
    return sql, _insert_params(payload, with_target_id=target_key is None)


def _append_python(payload: dict[str, Any], digest: str) -> tuple | None:
    """SQLite: the UPDATE takes the database write lock (BEGIN IMMEDIATE already has it)."""
    if not ChainHead.objects.filter(pk=1).update(seq=F("seq") + 1):
        return None
    head = ChainHead.objects.get(pk=1)
    moment = timezone.now()
    if head.occurred_at and head.occurred_at > moment:
        moment = head.occurred_at
    event_hash = chain_hash(head.hash, head.seq, format_time(moment), digest)
    event = AuditEvent(seq=head.seq, occurred_at=moment, prev_hash=head.hash, hash=event_hash, **payload)
    event._ledger_append = True
    event.save(force_insert=True)
    ChainHead.objects.filter(pk=1).update(hash=event_hash, prev_hash=head.hash, occurred_at=moment)
    return head.seq, moment, head.hash, event_hash


def _append_chained(payload: dict[str, Any]) -> tuple:
    """SQLite: append and chain at once (writes are serialised by the database anyway)."""
    digest = payload_digest([payload[name] for name in PAYLOAD_FIELDS])
    for _attempt in range(2):
        row = _append_python(payload, digest)
        if row:
            return row
        # No head row (a fresh or flushed database): create the genesis head, then retry.
        # If events exist without a head, the insert of seq 1 fails on UNIQUE: fail closed.
        ChainHead.objects.bulk_create([ChainHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
    raise RuntimeError("audit chain head could not be created")


def _origin(meta) -> tuple[str, str, str]:
    return clean_text(meta.ip, 64), clean_text(meta.user_agent, 400), clean_text(meta.request_id, 64)


def _content(event: Mapping[str, Any], action: str, origin: tuple[str, str, str]) -> dict[str, Any]:
    actor = event.get("actor")
    target_type, target_id = _target_parts(event.get("target"))
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return {
        "actor_id": actor.pk if authenticated else None,
        "actor_ref": str(actor.pk) if authenticated else "",
        "actor_username": clean_text(actor.get_username(), 150) if authenticated else "",
        "action": action,
        "target_type": clean_text(target_type, 100),
        "target_id": clean_text(target_id, 64),
        "case_reference": clean_text(event.get("case_reference") or "", 32),
        "details": clean_details(event.get("details") or {}),
        "ip": origin[0],
        "user_agent": origin[1],
        "request_id": origin[2],
    }


def _payload(
    *,
    action: Action | str,
    actor=None,
    target: Model | tuple[str, Any] | None = None,
    case_reference: str = "",
    details: dict[str, Any] | None = None,
    request=None,
    meta=None,
) -> dict[str, Any]:
    """The hashed content of one event, cleaned so the database stores it unchanged."""
    if action not in _KNOWN_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; add it to audit.events.Action")
    if request is not None:
        meta = meta_from_request(request)
    event = {"actor": actor, "target": target, "case_reference": case_reference, "details": details}
    return _content(event, str(action), _origin(meta or current_meta()))


# The model's columns in its field order: ``_stored`` builds events positionally (``from_db``),
# about 40% cheaper than keyword arguments on every append.
_COLUMNS = tuple(field.attname for field in AuditEvent._meta.concrete_fields)


def _stored(
    payload: dict[str, Any], seq: int, occurred_at: datetime, prev_hash: str | None, event_hash: str | None
) -> AuditEvent:
    values = {**payload, "seq": seq, "occurred_at": occurred_at, "prev_hash": prev_hash, "hash": event_hash}
    return AuditEvent.from_db(connection.alias, None, [values[name] for name in _COLUMNS])


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

    PostgreSQL: one INSERT that takes no lock shared with other writers (``seq`` from the
    table's sequence, the time from the database clock just after); the event is chained by the sealer once it
    has committed (``audit.sealer``), so the returned event has no hash yet. Writers never
    wait for each other; the append-only triggers and role protect the event until it is
    sealed, and the sealer seals it within seconds.

    SQLite: the event is chained at once under the chain head (SQLite serialises writers
    anyway), so the returned event carries its hash.

    If the caller's transaction rolls back, the event vanishes with it (on PostgreSQL it
    leaves a gap in ``seq``, which the chain does not mind: it links by ``prev_hash``).
    """
    payload = _payload(
        action=action, actor=actor, target=target, case_reference=case_reference, details=details, request=request
    )
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            seq, occurred_at = _insert_one_postgres(payload)
            return _stored(payload, seq, occurred_at, None, None)
        seq, occurred_at, prev_hash, event_hash = _append_chained(payload)
    return _stored(payload, seq, occurred_at, prev_hash, event_hash)


# --- many events at once ------------------------------------------------------------------

# Rows per INSERT statement. record_many() issues one INSERT per this many events, so a
# caller that passes at most this many gets a fixed number of statements.
INSERT_ROWS = 1000
_HEAD_FIELDS = ("seq", "hash", "occurred_at")


def _lock_head() -> tuple[int, str, datetime | None, datetime]:
    """Lock the chain head for this transaction; return its seq, hash, time and the clock.

    PostgreSQL: one ``SELECT ... FOR UPDATE`` that also reads the database clock
    (``statement_timestamp()``). SQLite: an UPDATE that changes nothing takes the database
    write lock (``BEGIN IMMEDIATE`` already has it), then a SELECT; the clock is the app
    server's, as in ``record``. Raises ``ChainHead.DoesNotExist`` when there is no head.
    """
    heads = ChainHead.objects.filter(pk=1)
    if connection.vendor == "postgresql":
        return heads.select_for_update().annotate(clock=Now()).values_list(*_HEAD_FIELDS, "clock").get()
    if not heads.update(seq=F("seq")):
        raise ChainHead.DoesNotExist
    return (*heads.values_list(*_HEAD_FIELDS).get(), timezone.now())


def _locked_head() -> tuple[int, str, datetime | None, datetime]:
    try:
        return _lock_head()
    except ChainHead.DoesNotExist:
        # A fresh or flushed database: create the genesis head. If events exist without a
        # head, the insert of seq 1 fails on UNIQUE: fail closed.
        ChainHead.objects.bulk_create([ChainHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
        return _lock_head()


# The keyword arguments of ``record``, which ``record_many`` takes per event.
_EVENT_KEYS = frozenset(("action", "actor", "target", "case_reference", "details", "request"))


def _payloads(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``_payload(**event)`` for every event, the request meta cleaned once when no event brings a request."""
    shared_origin = None
    payloads = []
    for event in events:
        if not event.keys() <= _EVENT_KEYS:
            raise TypeError(f"unexpected audit event keys: {sorted(event.keys() - _EVENT_KEYS)}")
        action = event["action"]
        if action not in _KNOWN_ACTIONS:
            raise ValueError(f"unknown audit action {action!r}; add it to audit.events.Action")
        request = event.get("request")
        if request is not None:
            origin = _origin(meta_from_request(request))
        else:
            origin = shared_origin = shared_origin or _origin(current_meta())
        payloads.append(_content(event, str(action), origin))
    return payloads


def _insert_postgres(rows: list[list[Any]]) -> list[tuple[int, datetime]]:
    """One INSERT of many events, their values sent as a single JSON document; their (seq, time) in order.

    The statement does not grow with the number of events (Django's multi-row INSERT sends
    a parameter per value, each adapted in Python); PostgreSQL unpacks the rows with
    ``jsonb_array_elements`` in their order, so the sequence numbers rise in the caller's
    order. ``details`` goes in as the JSON value itself, exactly as ``record`` stores it;
    every other value as text cast to its column's type.
    """
    with connection.cursor() as cursor:
        cursor.execute(_POSTGRES_INSERT_MANY, [json.dumps(rows)])
        return cursor.fetchall()


_POSTGRES_INSERT_MANY = """WITH inserted AS (
INSERT INTO "audit_auditevent" ("seq", "occurred_at", {columns})
SELECT nextval('audit_auditevent_seq'), clock_timestamp(), {values}
  FROM (SELECT event FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS listed (event, n) ORDER BY n) AS events
RETURNING seq, occurred_at
) SELECT seq, occurred_at FROM inserted ORDER BY seq
""".format(  # noqa: S608 (column names are constants; every value is a parameter)
    columns=", ".join(f'"{name}"' for name in PAYLOAD_FIELDS),
    values=", ".join(
        "(event->>0)::bigint" if name == "actor_id" else f"event->{n}" if name == "details" else f"event->>{n}"
        for n, name in enumerate(PAYLOAD_FIELDS)
    ),
)


def record_many(events: Iterable[Mapping[str, Any]], *, returning: bool = True) -> list[AuditEvent] | None:
    """Append several events, in order, inside the caller's transaction.

    ``events`` holds one mapping per event with :func:`record`'s keyword arguments
    (``action``, ``actor``, ``target``, ``case_reference``, ``details``, ``request``). Every
    event is cleaned and checked before anything is written, so an unknown action writes
    nothing.

    The number of SQL statements does not depend on how many events there are (one INSERT
    per ``INSERT_ROWS`` events). PostgreSQL: the events go in as ``record`` writes one, with
    no lock shared with other writers, their sequence numbers rising in the given order; the
    sealer chains them once committed. SQLite: the chain head is locked and read once, the
    chain computed here with the same hash functions as the sealer and the verifier, and the
    head moved once, and all events of one call share one ``occurred_at``. If the caller
    rolls back, every event vanishes with it. An empty list writes nothing.

    Returns the stored events; with ``returning=False``, None: a caller that does not use
    them saves building the model instances (about a sixth of the time for 10,000 events).
    """
    payloads = _payloads(events)
    if not payloads:
        return [] if returning else None
    if connection.vendor == "postgresql":
        return _record_many_postgres(payloads, returning=returning)
    with transaction.atomic(savepoint=False):
        head_seq, prev_hash, head_time, clock = _locked_head()
        moment = max(clock, head_time) if head_time else clock
        occurred_at = format_time(moment)
        rows = []
        for seq, payload in enumerate(payloads, start=head_seq + 1):
            values = [payload[name] for name in PAYLOAD_FIELDS]
            event_hash = chain_hash(prev_hash, seq, occurred_at, payload_digest(values))
            rows.append([seq, *values, prev_hash, event_hash])
            prev_hash = event_hash
        stored = [_stored_row(row, moment) for row in rows]
        AuditEvent.objects.ledger_insert(stored, rows_per_statement=INSERT_ROWS)
        last = rows[-1]
        ChainHead.objects.filter(pk=1).update(seq=last[0], hash=last[-1], prev_hash=last[-2], occurred_at=moment)
    return stored if returning else None


def _record_many_postgres(payloads: list[dict[str, Any]], *, returning: bool) -> list[AuditEvent] | None:
    """PostgreSQL: plain INSERTs (no lock shared with other writers); the sealer chains them later."""
    stored = [] if returning else None
    with transaction.atomic(savepoint=False):
        for start in range(0, len(payloads), INSERT_ROWS):
            part = payloads[start : start + INSERT_ROWS]
            placed = _insert_postgres([[payload[name] for name in PAYLOAD_FIELDS] for payload in part])
            if stored is not None:
                stored.extend(
                    _stored(payload, seq, occurred_at, None, None)
                    for payload, (seq, occurred_at) in zip(part, placed, strict=True)
                )
    return stored


def _stored_row(row: list[Any], occurred_at: datetime) -> AuditEvent:
    """The AuditEvent for a row of ``record_many`` (``HASHED_FIELDS`` order, then ``hash``), as if read back."""
    event = AuditEvent.from_db(connection.alias, None, [row[0], occurred_at, *row[1:]])
    event._ledger_append = True
    return event
