"""The sealer: chains committed events in ``seq`` order, in batches, one sealer at a time.

Writers on PostgreSQL insert their event's content and take no lock another writer waits
for (``audit.ledger``). The sealer then gives every committed event its place in the chain:
``prev_hash`` is the previous sealed event's hash, ``hash`` the event's hash by the ledger's
encoding (version 1, unchanged), both written once by the only UPDATE the triggers allow.
The chain head row holds the newest sealed event; its row lock makes the sealer
single-runner (a second sealer finds it locked and leaves).

Never past an event that could still appear below
--------------------------------------------------

A writer takes its ``seq`` from the sequence and commits whenever its business transaction
does, so numbers commit out of order. Sealing event ``n`` while a transaction that holds
``n - 1`` is still open would leave ``n - 1`` outside the chain for ever. The horizon rule:

1. read ``M``, the sequence's last value;
2. then list the transactions that hold a lock on the audit table (``pg_locks``: an INSERT
   takes its table's lock when the statement is analysed, before its ``nextval`` runs, and
   keeps it until the transaction ends), other than the sealer's own;
3. every transaction that drew a number ``<= M`` drew it before step 1, so it held the lock
   at step 2 or had already ended; once every transaction of that list has ended (the sealer
   waits a moment, polling, then gives up until its next run), each number ``<= M`` is
   committed or rolled back for good, and the committed events up to ``M`` can be sealed in
   ``seq`` order without ever being overtaken.

The sequence keeps PostgreSQL's default ``CACHE 1``: with a cache, a session could hand out
a number below ``M`` after ``M`` was read, and the rule would not hold.

``pg_locks`` needs no privilege (unlike another role's ``pg_stat_activity``), lists prepared
transactions too (with no backend), and ignores read-only transactions, so a long report or
verification does not hold sealing back. A long *writing* transaction does, as it must: the
age of the oldest unsealed event is reported by ``verify_audit`` and raises an oversight
alert past ``AUDIT_SEAL_MAX_AGE_SECONDS`` (``investigations.actions.oversight``).

SQLite chains at append time (its writers are serialised anyway): sealing is a no-op there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from .ledger import GENESIS_HASH, OCCURRED_AT_SQL, PAYLOAD_FIELDS, chain_hash, payload_digest
from .models import AuditEvent, ChainHead
from .verification import decode_all

logger = logging.getLogger(__name__)

SEQUENCE = "audit_auditevent_seq"
# Events chained per transaction: a batch is one SELECT, one UPDATE and the head's move.
BATCH = 5_000
# How long one run waits for the writers that may still commit below the horizon.
HORIZON_WAIT_SECONDS = 2.0
POLL_SECONDS = 0.005

_LAST_NUMBER = "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM audit_auditevent_seq"
# Transactions other than this one holding (or waiting for) the audit table's write lock
# (RowExclusiveLock, what INSERT takes; a reader's AccessShareLock does not count).
_WRITERS = """
SELECT DISTINCT virtualtransaction FROM pg_locks
 WHERE locktype = 'relation' AND relation = 'audit_auditevent'::regclass AND mode = 'RowExclusiveLock'
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND pid IS DISTINCT FROM pg_backend_pid()
"""
_STILL_OPEN = """
SELECT count(*) FROM pg_locks
 WHERE locktype = 'relation' AND relation = 'audit_auditevent'::regclass AND mode = 'RowExclusiveLock'
   AND virtualtransaction = ANY(%s)
"""
# The head's own event and the events after it, by the primary key: past the head nothing
# is sealed (no index on ``hash`` is needed to find the work, and a seal changes no indexed
# column, so it is a HOT update).
_FROM_HEAD = """
SELECT seq, {occurred_at}, occurred_at, hash, {payload}
  FROM audit_auditevent WHERE seq >= %s AND seq <= %s ORDER BY seq LIMIT %s
""".format(occurred_at=OCCURRED_AT_SQL, payload=", ".join(PAYLOAD_FIELDS))
# The batch's seals as four arrays, joined on the full primary key (``seq``, ``occurred_at``)
# and bounded by the batch's first and last ``seq``: each partition's primary key index finds
# the rows, rather than a scan of every partition for unsealed rows (which grows with the table).
_SEAL = """
UPDATE audit_auditevent AS event SET prev_hash = sealed.prev_hash, hash = sealed.hash
  FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::text[]) AS sealed (seq, occurred_at, prev_hash, hash)
 WHERE event.seq = sealed.seq AND event.occurred_at = sealed.occurred_at AND event.hash IS NULL
   AND event.seq BETWEEN %s AND %s
"""


@dataclass(frozen=True)
class Sealing:
    """What one run did: events sealed, the head it left, and why it stopped short if it did."""

    sealed: int
    head_seq: int
    held_back: bool = False  # a writer below the horizon was still open when the wait ran out
    busy: bool = False  # another sealer was running

    def as_json(self) -> dict:
        return {"sealed": self.sealed, "head_seq": self.head_seq, "held_back": self.held_back, "busy": self.busy}


def horizon(*, wait: float = HORIZON_WAIT_SECONDS) -> int | None:
    """The highest ``seq`` that can be sealed now (rule above), or None if writers below it stayed open."""
    with connection.cursor() as cursor:
        cursor.execute(_LAST_NUMBER)
        newest = cursor.fetchone()[0]
        cursor.execute(_WRITERS)
        writers = [row[0] for row in cursor.fetchall()]
        deadline = time.monotonic() + wait
        while writers:
            cursor.execute(_STILL_OPEN, [writers])
            if not cursor.fetchone()[0]:
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)
    return newest


def seal(*, batch: int = BATCH, wait: float = HORIZON_WAIT_SECONDS) -> Sealing:
    """Chain every committed event up to the horizon; safe to run at any time, from anywhere.

    Call it outside a transaction (a worker, a command): each batch commits on its own.
    Inside one it still works, and the events the caller wrote are sealed with it.
    """
    if connection.vendor != "postgresql":
        return Sealing(0, ChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0)
    total, limit = 0, None
    while True:
        with transaction.atomic():
            head = _locked_head()
            if head is None:
                return Sealing(total, 0, busy=True)
            if limit is None:  # once per run, holding the head: a second sealer leaves at once
                limit = horizon(wait=wait)
                if limit is None:
                    return Sealing(total, head.seq, held_back=True)
            count = _seal_batch(head, limit, batch) if limit > head.seq else 0
            total += count
            if count < batch:
                return Sealing(total, head.seq)


class HeadMissing(RuntimeError):
    """The chain head row is gone while sealed events exist: sealing stops (fail closed)."""


class HeadMismatch(RuntimeError):
    """The chain head row does not name the newest sealed event with its stored hash: sealing
    stops (fail closed) rather than fork the chain, and the verifier names the break."""


def _locked_head() -> ChainHead | None:
    """The chain head, locked for this transaction; None if another sealer holds it.

    A fresh (or flushed) ledger gets the genesis head. A head deleted under a sealed chain is
    not recreated: chaining on from genesis would fork the chain, and ``verify_audit``
    reports the missing row.
    """
    heads = ChainHead.objects.select_for_update(skip_locked=True).filter(pk=1)
    head = heads.first()
    if head is None and not ChainHead.objects.filter(pk=1).exists():
        if AuditEvent.objects.filter(hash__isnull=False).exists():
            raise HeadMissing("the chain head row is missing under a sealed chain: not sealing")
        ChainHead.objects.bulk_create([ChainHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
        head = heads.first()
    return head


def _seal_batch(head: ChainHead, limit: int, batch: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_FROM_HEAD, [head.seq, limit, batch + 1 if head.seq else batch])
        rows = cursor.fetchall()
        if head.seq:
            if not rows or rows[0][0] != head.seq or rows[0][3] != head.hash:
                raise HeadMismatch(f"the chain head row does not match event #{head.seq}: not sealing")
            rows = rows[1:]
        if any(row[3] is not None for row in rows):
            raise HeadMismatch(f"sealed events lie past the chain head #{head.seq}: not sealing")
        if not rows:
            return 0
        details_at = 4 + PAYLOAD_FIELDS.index("details")
        details = decode_all([row[details_at] for row in rows])
        prev_hash, prev_hashes, hashes = head.hash, [], []
        for row, detail in zip(rows, details, strict=True):
            values = list(row[4:])
            values[details_at - 4] = detail
            event_hash = chain_hash(prev_hash, row[0], row[1], payload_digest(values))
            prev_hashes.append(prev_hash)
            hashes.append(event_hash)
            prev_hash = event_hash
        seqs = [row[0] for row in rows]
        cursor.execute(_SEAL, [seqs, [row[2] for row in rows], prev_hashes, hashes, seqs[0], seqs[-1]])
        if cursor.rowcount != len(rows):
            raise RuntimeError(f"sealed {cursor.rowcount} of {len(rows)} events: another writer sealed some")
    last = rows[-1]
    head.seq, head.prev_hash, head.hash, head.occurred_at = last[0], prev_hashes[-1], prev_hash, last[2]
    head.save(update_fields=["seq", "prev_hash", "hash", "occurred_at"])
    return len(rows)


def seal_first() -> Sealing | None:
    """Seal before reading the chain (verification, streams, the oversight scan, checkpoints).

    A sealer that cannot run (a missing head, a database error) is logged and the reader goes
    on with what is sealed: verification then reports the cause, and the oversight scan the
    age of what waits.
    """
    try:
        return seal()
    except Exception:
        logger.exception("the audit sealer could not run")
        return None


def waiting() -> models.QuerySet[AuditEvent]:
    """The committed events the sealer has not chained yet (none on SQLite): those past the head,
    found by the primary key (``hash`` has no index; the verifier checks that none below the
    head is unsealed)."""
    head_seq = ChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
    return AuditEvent.objects.filter(seq__gt=head_seq, hash__isnull=True)


def oldest_unsealed() -> AuditEvent | None:
    """The oldest committed event the sealer has not chained yet (never one on SQLite)."""
    return waiting().order_by("seq").only("seq", "occurred_at").first()


def unsealed_age(now: datetime | None = None) -> timedelta | None:
    event = oldest_unsealed()
    if event is None:
        return None
    return max((now or timezone.now()) - event.occurred_at, timedelta(0))


def max_age() -> timedelta:
    return timedelta(seconds=settings.AUDIT_SEAL_MAX_AGE_SECONDS)
