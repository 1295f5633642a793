"""The ledger streamed out: to syslog receivers (RFC 5424 over TLS) and HTTPS webhooks.

An organisation's security team watches its SIEM, not this application's pages, and a
stream an insider can silence unnoticed is worth little. So:

- **At least once, in ledger order.** Each destination keeps a cursor, the last sequence
  number its receiver acknowledged. A delivery reads the events after it in ``seq`` order,
  sends them as one batch, and moves the cursor only after the receiver acknowledged the
  whole batch. A crash anywhere before that leaves the cursor where it was, so the batch is
  sent again: a receiver may see an event twice, always with the same ``seq`` and ``hash``,
  and deduplicates on ``seq``. Only sealed events are sent (``audit.sealer``): the sealer
  chains every committed event up to a number no open transaction can still commit below,
  in ``seq`` order, so the sealed events are a prefix of the ledger that only grows, and
  nothing can appear behind a cursor. Every event sent carries its hash.
- **Acknowledged means read.** A webhook acknowledges with a 2xx answer. Syslog over TCP has
  no acknowledgement of its own: the sender closes its TLS session after the batch
  (``close_notify``) and counts the batch delivered only when the receiver answers with its own
  ``close_notify``, which a TLS stack sends only after its application read every record
  before it. A reset, a timeout or a bare TCP close is a failure.
- **Nothing dropped.** A failing destination keeps its cursor; the backlog grows and is shown
  (operations page, ``worker_health``); after ``AUDIT_STREAM_ALERT_AFTER_MINUTES`` of failure a
  ``stream.failing`` event is recorded, which oversight turns into a critical alert. Retries
  back off (5 s doubling to 5 min), tracked in the database, not in the broker.
- **Changes are recorded.** Creating, changing, pausing, resuming and deleting a destination are
  the actions below; each writes its ledger event in the same transaction, and oversight
  alerts on every pause, deletion or change of address or filter.

Only one delivery per destination runs at a time: a worker takes a lease on the row with a
conditional UPDATE and gives it back when done; a lease left by a killed worker runs out
after ``AUDIT_STREAM_LEASE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .events import Action
from .ledger import HASHED_FIELDS, format_time, record
from .models import AuditEvent, StreamDestination, StreamKind
from .sealer import seal_first

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Custos-Signature"
TIMESTAMP_HEADER = "X-Custos-Timestamp"
DESTINATION_HEADER = "X-Custos-Destination"
SIGNATURE_VERSION = "v1"
MIN_SECRET_LENGTH = 32
_PREFIX = re.compile(r"^[a-z_]+(\.[a-z_]*)?$")
# Fields a change of which may silence a stream (oversight alerts on them).
SILENCING_FIELDS = frozenset({"url", "kind", "action_prefixes", "ca_file"})
EDITABLE_FIELDS = ("kind", "url", "secret", "ca_file", "action_prefixes")


class DeliveryFailed(Exception):
    """The receiver did not acknowledge the batch; the cursor stays where it was."""


def config() -> dict[str, Any]:
    return settings.AUDIT_STREAM


# --- validation --------------------------------------------------------------------------


def _clean_url(kind: str, url: str) -> str:
    parts = urlsplit(url.strip())
    if kind == StreamKind.WEBHOOK:
        if parts.scheme != "https" or not parts.hostname:
            raise ValidationError({"url": "A webhook address starts with https:// and names a host."})
        return parts.geturl()
    if parts.scheme != "tls" or not parts.hostname or not parts.port or parts.path not in ("", "/"):
        raise ValidationError({"url": "A syslog address is tls://host:port (TLS is required)."})
    return f"tls://{parts.netloc}"


def _clean_prefixes(prefixes: Any) -> list[str]:
    if isinstance(prefixes, str):
        prefixes = [item for item in re.split(r"[\s,]+", prefixes) if item]
    if not isinstance(prefixes, list | tuple) or not all(isinstance(item, str) for item in prefixes):
        raise ValidationError({"action_prefixes": "A list of event-type prefixes, such as request. or grant.revoked."})
    cleaned = sorted(set(prefixes))
    for prefix in cleaned:
        if not _PREFIX.match(prefix) or not any(value.startswith(prefix) for value in Action.values):
            raise ValidationError({"action_prefixes": f"'{prefix[:40]}' matches no kind of audit event."})
    return cleaned


def clean_fields(fields: dict[str, Any], *, existing: StreamDestination | None = None) -> dict[str, Any]:
    """Check a destination's fields; a ValidationError names the field. ``secret`` blank keeps the old one."""
    kind = fields.get("kind", existing.kind if existing else "")
    if kind not in StreamKind.values:
        raise ValidationError({"kind": f"One of: {', '.join(StreamKind.values)}."})
    cleaned: dict[str, Any] = {"kind": kind}
    cleaned["url"] = _clean_url(kind, str(fields.get("url", existing.url if existing else "")))
    cleaned["action_prefixes"] = _clean_prefixes(
        fields.get("action_prefixes", existing.action_prefixes if existing else [])
    )
    cleaned["ca_file"] = str(fields.get("ca_file", existing.ca_file if existing else "")).strip()
    secret = str(fields.get("secret") or "") or (existing.secret if existing else "")
    if kind == StreamKind.WEBHOOK and len(secret) < MIN_SECRET_LENGTH:
        message = f"A webhook needs a shared secret of at least {MIN_SECRET_LENGTH} characters."
        raise ValidationError({"secret": message})
    cleaned["secret"] = secret
    return cleaned


def _described(destination: StreamDestination) -> dict[str, Any]:
    """What the ledger says about a destination: never its secret."""
    return {
        "name": destination.name,
        "kind": destination.kind,
        "url": destination.url,
        "action_prefixes": list(destination.action_prefixes),
        "paused": destination.paused,
        "from_environment": destination.from_environment,
        "cursor": destination.cursor,
    }


# --- actions: every change is recorded ---------------------------------------------------


def destination_create(
    *, actor, name: str, from_environment: bool = False, paused: bool = False, **fields: Any
) -> StreamDestination:
    """Add a destination. It starts at the beginning of the ledger (cursor 0): nothing is skipped."""
    destination = StreamDestination(
        name=name, from_environment=from_environment, paused=paused, **clean_fields(fields)
    )
    destination.full_clean(exclude=["secret"])
    with transaction.atomic():
        destination.save()
        record(action=Action.STREAM_CREATED, actor=actor, target=destination, details=_described(destination))
    return destination


def destination_update(*, actor, destination: StreamDestination, **fields: Any) -> StreamDestination:
    """Change address, secret, CA or filter. Records which fields changed (never the secret's value)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"Not editable: {', '.join(sorted(unknown))}.")
    cleaned = clean_fields(fields, existing=destination)
    changed = sorted(name for name, value in cleaned.items() if getattr(destination, name) != value)
    if not changed:
        return destination
    with transaction.atomic():
        locked = StreamDestination.objects.select_for_update().get(pk=destination.pk)
        for name in changed:
            setattr(locked, name, cleaned[name])
        locked.save(update_fields=changed)
        details = {**_described(locked), "changed": changed, "silencing": bool(SILENCING_FIELDS & set(changed))}
        record(action=Action.STREAM_CHANGED, actor=actor, target=locked, details=details)
    return locked


def _set_paused(*, actor, destination: StreamDestination, paused: bool, reason: str) -> StreamDestination:
    with transaction.atomic():
        locked = StreamDestination.objects.select_for_update().get(pk=destination.pk)
        if locked.paused == paused:
            return locked
        locked.paused = paused
        locked.save(update_fields=["paused"])
        action = Action.STREAM_PAUSED if paused else Action.STREAM_RESUMED
        record(action=action, actor=actor, target=locked, details={**_described(locked), "reason": reason})
    return locked


def destination_pause(*, actor, destination: StreamDestination, reason: str = "") -> StreamDestination:
    """Stop sending; the cursor stays, so resuming sends everything recorded meanwhile. Oversight is alerted."""
    return _set_paused(actor=actor, destination=destination, paused=True, reason=reason)


def destination_resume(*, actor, destination: StreamDestination, reason: str = "") -> StreamDestination:
    return _set_paused(actor=actor, destination=destination, paused=False, reason=reason)


def destination_delete(*, actor, destination: StreamDestination, reason: str = "") -> None:
    """Remove a destination; the event keeps its name, address and how far it got. Oversight is alerted."""
    with transaction.atomic():
        locked = StreamDestination.objects.select_for_update().get(pk=destination.pk)
        details = {**_described(locked), "reason": reason, "backlog": backlog(locked)}
        record(action=Action.STREAM_DELETED, actor=actor, target=locked, details=details)
        locked.delete()


# --- destinations from the environment ---------------------------------------------------


def environment_destinations() -> list[dict[str, Any]]:
    """``AUDIT_STREAMS``: a JSON list of destinations; a ``secret_env`` names the variable holding a secret."""
    import os

    entries = []
    for entry in config()["DESTINATIONS"]:
        entry = dict(entry)
        secret_env = entry.pop("secret_env", "")
        if secret_env:
            entry["secret"] = os.environ.get(secret_env, "")
        entries.append(entry)
    return entries


def _apply_environment_entry(name: str, entry: dict[str, Any]) -> None:
    existing = StreamDestination.objects.filter(name=name).first()
    if existing is None:
        destination_create(actor=None, name=name, from_environment=True, **entry)
        return
    fields = {key: value for key, value in entry.items() if key in EDITABLE_FIELDS}
    destination = destination_update(actor=None, destination=existing, **fields)
    if destination.paused:
        destination_resume(actor=None, destination=destination, reason="defined again in AUDIT_STREAMS")


def sync_environment() -> list[str]:
    """Make the environment-defined destinations match ``AUDIT_STREAMS``; every change is recorded.

    A destination removed from the environment is paused, not deleted: its cursor is kept and
    oversight is alerted, as for any pause.
    """
    seen = []
    for entry in environment_destinations():
        name = str(entry.pop("name", ""))
        seen.append(name)
        try:
            _apply_environment_entry(name, entry)
        except (ValidationError, TypeError) as error:  # one bad entry must not stop the others
            logger.error("AUDIT_STREAMS entry %r ignored: %s", name, error)
    gone = StreamDestination.objects.filter(from_environment=True, paused=False).exclude(name__in=seen)
    for destination in gone:
        destination_pause(actor=None, destination=destination, reason="removed from AUDIT_STREAMS")
    return seen


# --- what is sent ------------------------------------------------------------------------


def event_document(row: tuple) -> dict[str, Any]:
    """One event as receivers get it: every hashed field and the hash, so they can check the chain."""
    document = dict(zip((*HASHED_FIELDS, "hash"), row, strict=True))
    document["occurred_at"] = format_time(document["occurred_at"])
    return document


def _sd_value(value: Any) -> str:
    return re.sub(r'(["\\\]])', r"\\\1", str(value))


def syslog_message(document: dict[str, Any]) -> bytes:
    """RFC 5424: ``<PRI>1 TIMESTAMP HOST APP - MSGID [SD] BOM JSON``; seq and hashes in the structured data."""
    options = config()
    pri = options["SYSLOG_FACILITY"] * 8 + options["SYSLOG_SEVERITY"]
    msgid = re.sub(r"[^!-~]", "_", document["action"])[:32] or "-"
    structured = (
        f'[{options["SYSLOG_SD_ID"]} seq="{document["seq"]}" hash="{document["hash"]}" '
        f'prev="{document["prev_hash"]}" case="{_sd_value(document["case_reference"])}"]'
    )
    header = f"<{pri}>1 {document['occurred_at']} {options['SYSLOG_HOSTNAME']} custos - {msgid} {structured} "
    body = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return header.encode("ascii", "replace") + b"\xef\xbb\xbf" + body.encode("utf-8")


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 / RFC 5425 framing: the length in decimal, a space, the message."""
    return str(len(message)).encode("ascii") + b" " + message


def webhook_body(destination: StreamDestination, documents: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"destination": destination.name, "events": documents}, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 over ``timestamp + "." + body``; receivers recompute and compare."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


# --- sending -----------------------------------------------------------------------------


def _tls_context(destination: StreamDestination) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=destination.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _send_syslog(destination: StreamDestination, documents: list[dict[str, Any]]) -> None:
    parts = urlsplit(destination.url)
    payload = b"".join(octet_counted(syslog_message(document)) for document in documents)
    timeout = config()["TIMEOUT_SECONDS"]
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as raw:
            tls = _tls_context(destination).wrap_socket(raw, server_hostname=parts.hostname)
            tls.sendall(payload)
            tls.unwrap()  # our close_notify, then the receiver's: it read every record before it
    except (OSError, ssl.SSLError) as error:
        raise DeliveryFailed(f"syslog {parts.hostname}:{parts.port}: {error}") from error


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is not an acknowledgement, and must not carry the ledger elsewhere


def _send_webhook(destination: StreamDestination, documents: list[dict[str, Any]]) -> None:
    body = webhook_body(destination, documents)
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked: https only)
        destination.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "custos-ledger-stream",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(destination.secret, timestamp, body),
            DESTINATION_HEADER: destination.name,
        },
    )
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=_tls_context(destination)),
        _NoRedirects(),
    )
    try:
        with opener.open(request, timeout=config()["TIMEOUT_SECONDS"]) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(f"webhook answered {error.code}") from error
    except (OSError, ssl.SSLError) as error:
        raise DeliveryFailed(f"webhook: {getattr(error, 'reason', error)}") from error
    if not 200 <= status < 300:
        raise DeliveryFailed(f"webhook answered {status}")


SENDERS = {StreamKind.SYSLOG: _send_syslog, StreamKind.WEBHOOK: _send_webhook}


# --- one delivery ------------------------------------------------------------------------


@dataclass
class Delivery:
    state: str  # busy | idle | delivered | failed
    sent: int = 0
    skipped: int = 0
    cursor: int = 0
    more: bool = False
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def backoff(failures: int) -> timedelta:
    """5 s after the first failure, doubling, at most 5 minutes: never an immediate retry."""
    return timedelta(seconds=min(5 * 2 ** max(failures - 1, 0), 300))


def due(now: datetime | None = None) -> Q:
    """Not paused, nobody holding the lease, not backing off."""
    now = now or timezone.now()
    return (
        Q(paused=False)
        & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    )


def _claim(destination_id: int) -> StreamDestination | None:
    """Take the destination's lease (a conditional UPDATE: 0 rows means another worker has it)."""
    now = timezone.now()
    lease = now + timedelta(seconds=config()["LEASE_SECONDS"])
    claimed = StreamDestination.objects.filter(due(now), pk=destination_id).update(lease_until=lease)
    return StreamDestination.objects.filter(pk=destination_id).first() if claimed else None


def _batch(destination: StreamDestination) -> tuple[list[tuple], int, bool]:
    """The next sealed events after the cursor, in order; the last seq examined; more to come?

    Numbers may have gaps (writers that rolled back); the chain links over them, and so can
    the receiver, since every event carries its ``prev_hash``.
    """
    size = config()["BATCH"]
    rows = list(
        AuditEvent.objects.filter(seq__gt=destination.cursor, hash__isnull=False)
        .order_by("seq")
        .values_list(*HASHED_FIELDS, "hash")[:size]
    )
    last = rows[-1][0] if rows else destination.cursor
    return rows, last, len(rows) == size


def _selected(destination: StreamDestination, rows: list[tuple]) -> list[dict[str, Any]]:
    prefixes = tuple(destination.action_prefixes)
    action_at = HASHED_FIELDS.index("action")
    return [event_document(row) for row in rows if not prefixes or row[action_at].startswith(prefixes)]


def _delivered(destination: StreamDestination, last_seq: int) -> None:
    """Move the cursor past what the receiver acknowledged, give the lease back; record a recovery."""
    now = timezone.now()
    with transaction.atomic():
        StreamDestination.objects.filter(pk=destination.pk, cursor=destination.cursor).update(
            cursor=last_seq,
            lease_until=None,
            failures=0,
            failing_since=None,
            alerted_at=None,
            next_attempt_at=None,
            last_success_at=now,
            last_error="",
        )
        if destination.alerted_at is not None:
            details = {**_described(destination), "cursor": last_seq, "failing_since": destination.failing_since}
            record(action=Action.STREAM_RECOVERED, target=destination, details=details)


def _failed(destination: StreamDestination, error: str) -> None:
    """Keep the cursor, back off, and after the alert delay record ``stream.failing`` once per outage."""
    now = timezone.now()
    failures = destination.failures + 1
    failing_since = destination.failing_since or now
    alert_after = timedelta(minutes=config()["ALERT_AFTER_MINUTES"])
    alert = destination.alerted_at is None and now - failing_since >= alert_after
    with transaction.atomic():
        StreamDestination.objects.filter(pk=destination.pk).update(
            lease_until=None,
            failures=failures,
            failing_since=failing_since,
            last_failure_at=now,
            next_attempt_at=now + backoff(failures),
            last_error=error[:500],
            **({"alerted_at": now} if alert else {}),
        )
        if alert:
            details = {
                **_described(destination),
                "failing_since": failing_since,
                "failures": failures,
                "error": error[:500],
                "backlog": backlog(destination),
            }
            record(action=Action.STREAM_FAILING, target=destination, details=details)


def deliver(destination_id: int) -> Delivery:
    """Send the next batch to one destination; see the module docstring for the guarantees.

    Raises :class:`DeliveryFailed` after recording the failure (the caller may log it); returns
    ``busy`` when another worker holds the lease, the destination is paused or backing off.
    """
    destination = _claim(destination_id)
    if destination is None:
        return Delivery(state="busy")
    try:
        seal_first()  # what has committed is chained first, so it goes out in this batch
        rows, last_seq, more = _batch(destination)
        documents = _selected(destination, rows)
        if documents:
            SENDERS[destination.kind](destination, documents)
    except DeliveryFailed as error:
        _failed(destination, str(error))
        raise
    except Exception as error:
        _failed(destination, f"{type(error).__name__}: {error}")
        raise
    _delivered(destination, last_seq)
    state = "delivered" if rows else "idle"
    return Delivery(state, len(documents), len(rows) - len(documents), last_seq, more)


# --- what operations and oversight see ---------------------------------------------------


def head_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def backlog(destination: StreamDestination, head: int | None = None) -> int:
    """Sequence numbers after the cursor (events the filter will skip, and gaps, included)."""
    return max((head_seq() if head is None else head) - destination.cursor, 0)


def state(destination: StreamDestination, now: datetime | None = None, head: int | None = None) -> str:
    """``paused``, ``failing`` (past the alert delay), ``retrying``, ``stalled`` (behind, nobody sending) or ``ok``."""
    now = now or timezone.now()
    if destination.paused:
        return "paused"
    alert_after = timedelta(minutes=config()["ALERT_AFTER_MINUTES"])
    if destination.failing_since:
        return "failing" if now - destination.failing_since >= alert_after else "retrying"
    last_move = destination.last_success_at or destination.created_at
    if backlog(destination, head) and now - last_move >= alert_after:
        return "stalled"
    return "ok"


def health_probes() -> list[dict[str, Any]]:
    """For the operations page and ``worker_health``: one row per destination."""
    head, now = head_seq(), timezone.now()
    rows = []
    for destination in StreamDestination.objects.all():
        current = state(destination, now, head)
        detail = f"cursor {destination.cursor} of {head}, backlog {backlog(destination, head)}"
        if destination.last_error:
            detail += f"; last error: {destination.last_error}"
        rows.append(
            {
                "name": f"ledger stream {destination.name}",
                "state": current,
                "detail": detail,
                "failing": current in {"failing", "stalled"},
                "since": destination.failing_since,
            }
        )
    return rows
