"""Old months out of the database: export (JSON lines + the signed checkpoint), verify, detach.

``manage.py audit_archive --month YYYY-MM --out DIR`` (PostgreSQL, as the table owner):

1. refuses unless the month's partition is attached, the month is before the current one
   (UTC), no older month is still in the table (months leave oldest first), every event is
   sealed, the live chain verifies, and a signed checkpoint (``audit.checkpoints``) at or
   after the month's last event exists;
2. writes ``audit-YYYY-MM.jsonl`` (created exclusively, fsynced, read-only): a header line,
   then every event of the archived range in ``seq`` order with every stored field, then the
   events after it up to the checkpoint (the *tail*, usually a few, so that the file can be
   checked against the signature on its own), then the checkpoint itself. Each line is one
   JSON object in the ledger's canonical encoding (``audit.canonical``);
3. verifies the file it wrote (:func:`verify_export`, as ``verify_audit --export`` does);
4. in one transaction: records an ``audit.archived`` event (range, last hash, file, its
   SHA-256, the checkpoint), DETACHes the partition and DROPs it. The export is the archive:
   keep it (and the checkpoint) where the checkpoints are kept.

The archived *range* is by ``seq``: from the previous archive's last event (or the first
event) to the highest ``seq`` in the month's partition. Writers commit out of order, so at a
month's turn an event of the next month may hold a lower number than the month's last one (a
straggler): it is part of this range and this export, stays in its own month's partition, and
is left out of the next month's range.

The live chain then starts after the newest ``audit.archived`` event's ``last_seq``, linked to
its ``last_hash`` (``audit.verification``); the checkpoint named in it anchors that link
(the live events up to it must hash to the signed head), and an event of the archived months
still in the table fails verification.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Min

from . import canonical, checkpoints, partitions
from .events import Action
from .ledger import EVENT_DOMAIN, GENESIS_HASH, HASHED_FIELDS, PAYLOAD_DOMAIN, format_time, record
from .models import AuditEvent

EXPORT_KIND = "custos.audit.archive"
EXPORT_VERSION = 1
LOCK_TIMEOUT = "5s"  # the detach waits for readers and writers: never stall them longer


class ArchiveRefused(Exception):
    """The month cannot be archived (yet); the message says why."""


@dataclass(frozen=True)
class Boundary:
    """Where the live chain starts: after the newest archived range."""

    last_seq: int
    last_hash: str
    last_occurred_at: str
    month_end: str  # the first instant after the archived month (canonical text)


def boundary() -> Boundary | None:
    """The newest archived range's end, from its sealed ``audit.archived`` event (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return None
    details = (
        AuditEvent.objects.filter(action=Action.AUDIT_ARCHIVED, hash__isnull=False)
        .order_by("-seq")
        .values_list("details", flat=True)
        .first()
    )
    if not details:
        return None
    return Boundary(
        int(details["last_seq"]), str(details["last_hash"]), str(details["last_occurred_at"]), str(details["month_end"])
    )


def parse_month(text: str) -> date:
    try:
        moment = datetime.strptime(text, "%Y-%m")
    except ValueError as error:
        raise ArchiveRefused(f"{text!r} is not a month (YYYY-MM)") from error
    return date(moment.year, moment.month, 1)


# --- the export file -------------------------------------------------------------------------


def _event_line(row: tuple) -> dict:
    event = dict(zip((*HASHED_FIELDS, "hash"), row, strict=True))
    event["occurred_at"] = format_time(event["occurred_at"])
    return {"event": event}


def _line(value: dict) -> bytes:
    return canonical.encode(value) + b"\n"


@dataclass(frozen=True)
class ExportCheck:
    ok: bool
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str = ""
    checkpoint_seq: int | None = None
    line: int | None = None
    reason: str = ""

    def summary(self) -> str:
        if self.ok:
            return (
                f"OK export: {self.events} events #{self.first_seq}..#{self.last_seq}, last hash {self.last_hash}; "
                f"signed checkpoint #{self.checkpoint_seq} agrees"
            )
        return f"FAILED at line {self.line}: {self.reason}"


class _Bad(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line, self.reason = line, reason


def verify_export(path: Path | str) -> ExportCheck:
    """Check an export on its own: every hash recomputed, every link, the count, and the signed
    checkpoint (a trusted key, this ledger's origin) against the last event it covers."""
    try:
        return _verify_export(Path(path))
    except _Bad as bad:
        return ExportCheck(False, line=bad.line, reason=bad.reason)
    except (KeyError, TypeError, ValueError, AttributeError) as error:  # a field missing or of the wrong kind
        return ExportCheck(False, line=None, reason=f"malformed archive: {error!r}")


def _verify_export(path: Path) -> ExportCheck:
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as error:
        raise _Bad(0, f"unreadable: {error}") from error
    if lines and lines[-1] == b"":
        lines.pop()
    documents = []
    for number, text in enumerate(lines, start=1):
        try:
            documents.append(json.loads(text))
        except ValueError as error:
            raise _Bad(number, f"not JSON: {error}") from error
    if len(documents) < 3 or "archive" not in documents[0] or "checkpoint" not in documents[-1]:
        raise _Bad(1, "not an audit archive (a header, events, a checkpoint)")
    header = documents[0]["archive"]
    if header.get("kind") != EXPORT_KIND or header.get("version") != EXPORT_VERSION:
        raise _Bad(1, "unknown archive kind or version")
    prev_hash, count, last_seq, last_hash, month_last = header["after_hash"], 0, header["after_seq"], "", None
    for number, document in enumerate(documents[1:-1], start=2):
        event = document.get("event") if isinstance(document, dict) else None
        if not isinstance(event, dict) or set(event) != {*HASHED_FIELDS, "hash"}:
            raise _Bad(number, "not an event line with every stored field")
        if not isinstance(event["seq"], int) or event["seq"] <= last_seq:
            raise _Bad(number, f"sequence number {event['seq']} out of order after {last_seq}")
        if event["prev_hash"] != prev_hash:
            raise _Bad(number, f"event #{event['seq']}: prev_hash does not link to the event before it")
        payload = [event[name] for name in HASHED_FIELDS[2:-1]]
        digest = hashlib.sha256(PAYLOAD_DOMAIN + canonical.encode(payload)).hexdigest()
        message = f"{EVENT_DOMAIN}\n{event['prev_hash']}\n{event['seq']}\n{event['occurred_at']}\n{digest}"
        if hashlib.sha256(message.encode("ascii")).hexdigest() != event["hash"]:
            raise _Bad(number, f"event #{event['seq']}: hash mismatch (content altered)")
        prev_hash, last_seq, last_hash = event["hash"], event["seq"], event["hash"]
        if event["seq"] <= header["last_seq"]:
            count += 1
            month_last = (event["seq"], event["hash"], number)
    if count != header["events"] or month_last is None or month_last[:2] != (header["last_seq"], header["last_hash"]):
        raise _Bad(
            month_last[2] if month_last else 1,
            f"the header announces {header['events']} events ending at #{header['last_seq']}; the file holds {count}",
        )
    number = len(documents)
    raw = documents[-1]["checkpoint"]
    checkpoint = checkpoints.from_json(raw, f"{path.name} (line {number})")
    try:
        checkpoints.check_signature(checkpoint, checkpoints.trusted_keys(), settings.AUDIT_LOG_ORIGIN)
    except checkpoints.CheckpointError as error:
        raise _Bad(number, error.reason) from error
    if (checkpoint.seq, checkpoint.head) != (last_seq, last_hash):
        raise _Bad(number, f"the signed checkpoint (#{checkpoint.seq}) does not match the last event #{last_seq}")
    return ExportCheck(
        True, count, header["first_seq"], header["last_seq"], header["last_hash"], checkpoint_seq=checkpoint.seq
    )


# --- archiving -------------------------------------------------------------------------------


def _refuse_unless_owner() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = %s::regclass",
            [partitions.TABLE],
        )
        if not cursor.fetchone()[0]:
            raise ArchiveRefused("run it as the table owner (the role that runs migrations), not the runtime role")


def archive(month: date, out_dir: Path | str, *, checkpoint_dir: Path | str | None = None) -> dict:
    """Export, verify, record, detach and drop one month (module docstring); returns what it did."""
    from .sealer import seal_first
    from .verification import verify

    if not partitions.is_partitioned():
        raise ArchiveRefused("the audit table is not partitioned (PostgreSQL only)")
    _refuse_unless_owner()
    if month >= partitions.current_month():
        raise ArchiveRefused(f"{month:%Y-%m} is not over yet: only months before the current one")
    name = partitions.partition_name(month)
    if name not in partitions.attached():
        raise ArchiveRefused(f"no attached partition {name} (archived already, or never made)")
    low, high = partitions.month_bounds(month)
    if AuditEvent.objects.filter(occurred_at__lt=low).exists():
        raise ArchiveRefused("an older month is still in the table: archive months oldest first")
    seal_first()
    previous = boundary()
    after_seq, after_hash = (previous.last_seq, previous.last_hash) if previous else (0, GENESIS_HASH)
    in_month = AuditEvent.objects.filter(occurred_at__gte=low, occurred_at__lt=high, seq__gt=after_seq)
    span = in_month.aggregate(first=Min("seq"), last=Max("seq"))
    if span["last"] is None:
        raise ArchiveRefused(f"{month:%Y-%m} holds no event to archive")
    in_range = AuditEvent.objects.filter(seq__gt=after_seq, seq__lte=span["last"])
    if in_range.filter(hash__isnull=True).exists():
        raise ArchiveRefused(f"{month:%Y-%m} has events not sealed yet: run the sealer (or wait) and try again")
    outcome = verify(checkpoint_dir=checkpoint_dir)
    if not outcome.ok:
        raise ArchiveRefused(f"the live chain does not verify: {outcome.summary()}")
    directory = Path(checkpoint_dir or settings.AUDIT_CHECKPOINT_DIR)
    covering = [c for c in checkpoints.load_verified(directory) if c.seq >= span["last"]]
    if not covering:
        raise ArchiveRefused(
            f"no signed checkpoint covers {month:%Y-%m} (none at or after #{span['last']}): "
            "run seal_audit_checkpoint (or wait for the hourly one) and try again"
        )
    checkpoint = min(covering, key=lambda c: c.seq)
    path = _write_export(month, Path(out_dir), after_seq, after_hash, span["last"], checkpoint)
    check = verify_export(path)
    if not check.ok:
        raise ArchiveRefused(f"the export {path} does not verify, nothing detached: {check.summary()}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    last = AuditEvent.objects.filter(seq=span["last"]).values_list("occurred_at", flat=True).get()
    details = {
        "month": f"{month:%Y-%m}",
        "partition": name,
        "after_seq": after_seq,
        "first_seq": check.first_seq,
        "last_seq": check.last_seq,
        "last_hash": check.last_hash,
        "last_occurred_at": format_time(last),
        "month_end": format_time(high),
        "events": check.events,
        "file": path.name,
        "sha256": digest,
        "checkpoint_seq": checkpoint.seq,
        "checkpoint_head": checkpoint.head,
        "checkpoint_file": Path(checkpoint.path).name,
    }
    quote = connection.ops.quote_name
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(f"ALTER TABLE {partitions.TABLE} DETACH PARTITION {quote(name)}")
            record(action=Action.AUDIT_ARCHIVED, details=details)
            cursor.execute(f"DROP TABLE {quote(name)}")
    except DatabaseError as error:  # a lock not granted in time, most often: nothing happened
        path.unlink()
        raise ArchiveRefused(
            f"could not detach {name} ({error}); nothing recorded or detached, the export removed: try again"
        ) from error
    seal_first()
    return details


def _write_export(month: date, directory: Path, after_seq: int, after_hash: str, last_seq: int, checkpoint) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-{month:%Y-%m}.jsonl"
    rows = (
        AuditEvent.objects.filter(seq__gt=after_seq, seq__lte=checkpoint.seq, hash__isnull=False)
        .order_by("seq")
        .values_list(*HASHED_FIELDS, "hash")
    )
    events = rows.filter(seq__lte=last_seq)
    first = events.values_list("seq", flat=True).first()
    last_hash = events.values_list("hash", flat=True).last()
    header = {
        "archive": {
            "kind": EXPORT_KIND,
            "version": EXPORT_VERSION,
            "origin": settings.AUDIT_LOG_ORIGIN,
            "month": f"{month:%Y-%m}",
            "after_seq": after_seq,
            "after_hash": after_hash,
            "first_seq": first,
            "last_seq": last_seq,
            "last_hash": last_hash,
            "events": events.count(),
            "checkpoint_seq": checkpoint.seq,
        }
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise ArchiveRefused(f"{path} exists already: move it away or choose another --out") from error
    with os.fdopen(fd, "wb") as handle:
        handle.write(_line(header))
        for row in rows.iterator(chunk_size=5000):
            handle.write(_line(_event_line(row)))
        handle.write(_line({"checkpoint": checkpoint.as_json()}))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o444)
    return path
