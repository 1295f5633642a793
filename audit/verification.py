"""Verify the ledger: recompute every hash, check continuity, agree with signed checkpoints.

Fast by construction: one streamed query of plain tuples (a server-side cursor, no model
instances), one pass, in chunks of ``CHUNK_SIZE`` rows (2,000: a chunk's objects stay in the
processor's caches; 10,000 cost about 1 µs more per event, in the fetch and the checks alike).
The pass also notes unsealed events, so finding one left out below the head costs no second
scan of the table. On PostgreSQL the database formats
``occurred_at`` with the same ``to_char`` the sealer uses (``ledger.OCCURRED_AT_SQL``), so no datetime is parsed or
formatted in Python. Per chunk the hashes are recomputed in batches, in C where the
standard library allows: the ``details`` of the whole chunk decoded in one ``json.loads``,
the canonical payloads encoded in one call of the public ``json.JSONEncoder`` (the
documented encoding, ``audit.canonical``), then SHA-256 per event; the checks then walk the
chunk in order. A mismatch found in a batch is confirmed by encoding that event alone, so a
failure is reported exactly as an event-by-event check would. A test pins the result to
``audit.ledger.hash_values``.

A large ledger on PostgreSQL is verified in seq ranges by worker processes (see
``_check_in_parallel``): every row stores its ``prev_hash``, so each range checks its own links
with the same loop, and the parent checks where the ranges meet. The outcome is the one the
single loop gives, failures included. A worker reads its range in a transaction of its own, so
the server produces the rows as they are fetched (``_postgres_rows``).
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone
from tqdm import tqdm

from . import canonical
from . import checkpoints as checkpoint_store
from .archive import Boundary
from .archive import boundary as archive_boundary
from .ledger import (
    EVENT_DOMAIN,
    GENESIS_HASH,
    HASHED_FIELDS,
    OCCURRED_AT_SQL,
    PAYLOAD_DOMAIN,
    PAYLOAD_FIELDS,
    format_time,
)
from .models import AuditEvent, ChainHead

CHUNK_SIZE = 2_000
LAST_SEQ = 2**63 - 1  # bigint's largest: "to the end of the table"
# Below this many events a single process is faster than starting workers.
PARALLEL_MIN_EVENTS = 20_000
# Ranges per worker: a worker that finishes early takes the next range instead of idling.
RANGES_PER_WORKER = 2

GAP = "sequence gap: the event after {previous} is not linked to it, next found {found} (events missing)"
BROKEN_LINK = "prev_hash does not match the previous event's hash (deleted, inserted or reordered)"
HASH_MISMATCH = "hash mismatch: the event's content was changed"
BACK_DATED = "timestamp earlier than the previous event's (back-dated)"
LEFT_OUT = "not sealed although later events are: left out of the chain"
ARCHIVED_STILL_HERE = (
    "an event of the archived range is still in the table (archived ranges are verified from their exports)"
)


@dataclass(frozen=True)
class Verification:
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str = ""
    checkpoints: int = 0
    from_seq: int = 1
    # The signed checkpoint an incremental run started after (its seq), else None.
    resumed_after: int | None = None
    # Committed events the sealer has not chained yet, after the head, and the oldest one's age.
    unsealed: int = 0
    unsealed_age_seconds: int | None = None

    @property
    def anchored(self) -> bool:
        """Whether the run reached back to a trusted start: the first event, or a signed checkpoint."""
        return self.from_seq == 1 or self.resumed_after is not None

    def summary(self) -> str:
        if not self.ok:
            return f"FAILED at seq {self.bad_seq}: {self.reason}"
        since = ""
        if self.resumed_after is not None:
            since = f" since signed checkpoint #{self.resumed_after}"
        elif self.from_seq > 1:
            since = f" from #{self.from_seq}"
        pending = ""
        if self.unsealed:
            pending = f"; {self.unsealed} newer not sealed yet (oldest {self.unsealed_age_seconds} s)"
        return f"OK {self.count} events verified{since}, head #{self.head_seq} {self.head_hash}{pending}"

    def as_json(self) -> dict:
        return {
            "ok": self.ok,
            "count": self.count,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "bad_seq": self.bad_seq,
            "reason": self.reason,
            "checkpoints": self.checkpoints,
            "from_seq": self.from_seq,
            "resumed_after": self.resumed_after,
            "anchored": self.anchored,
            "unsealed": self.unsealed,
            "unsealed_age_seconds": self.unsealed_age_seconds,
        }


class ChainBroken(Exception):
    def __init__(self, seq: int | None, reason: str):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


# Rows as (seq, occurred_at as canonical text, *payload, prev_hash, hash). ``details`` is
# decoded JSON. On PostgreSQL the time is formatted by the same expression the append hashes.
# Unsealed rows (hash NULL) come too: ``_check_rows`` leaves them out of the chain and notes
# the first, so no second pass over the table looks for one left out below the head.
_POSTGRES_ROWS = """
SELECT seq, {occurred_at}, {payload}, prev_hash, hash
  FROM audit_auditevent WHERE seq >= %s AND seq <= %s ORDER BY seq
""".format(occurred_at=OCCURRED_AT_SQL, payload=", ".join(PAYLOAD_FIELDS))


def _rows(from_seq: int, to_seq: int = LAST_SEQ) -> Iterator[Sequence]:
    if connection.vendor == "postgresql":
        return _postgres_rows(from_seq, to_seq)
    return _orm_rows(from_seq, to_seq)


def _orm_rows(from_seq: int, to_seq: int) -> Iterator[tuple]:
    columns = (*HASHED_FIELDS, "hash")
    queryset = (
        AuditEvent.objects.filter(seq__gte=from_seq, seq__lte=to_seq)
        .order_by("seq")
        .values_list(*columns)
    )
    for row in queryset.iterator(chunk_size=CHUNK_SIZE):
        yield (row[0], format_time(row[1]), *row[2:])


def _postgres_rows(from_seq: int, to_seq: int) -> Iterator[tuple]:
    """Raw rows: Django's psycopg setup hands ``details`` (jsonb) over as text; the loop decodes it.

    A worker reads its range inside a transaction (``_streamed``): there the server-side cursor
    is an ordinary one, whose rows the server produces as they are fetched. In autocommit
    Django declares it WITH HOLD, and PostgreSQL then runs the whole query and stores every
    row (in a temporary file past ``work_mem``) before the first fetch: about a fifth of a
    range's time, with the worker idle. The single loop keeps the caller's mode (``verify``).
    """
    with connection.chunked_cursor() as cursor:
        cursor.execute(_POSTGRES_ROWS, [from_seq, to_seq])
        while chunk := cursor.fetchmany(CHUNK_SIZE):
            yield from chunk


def decode_all(texts: list) -> list:
    """``[json.loads(text) for text in texts]`` in one call of the C scanner: PostgreSQL hands
    ``details`` over as the text of one JSON value each, so joined with commas they are one array."""
    try:
        values = json.loads("[" + ",".join(texts) + "]")
    except ValueError:
        values = None
    if values is None or len(values) != len(texts):  # never from PostgreSQL; decide one by one
        values = [json.loads(text) for text in texts]
    return values


def _recomputed_hashes(rows: Sequence[Sequence]) -> list[str]:
    """The hash of every row recomputed from its content, its time and its stored ``prev_hash``.

    In batches, in C where the standard library allows: ``details`` decoded in one call, the
    canonical payloads encoded in one call (``audit.canonical.dumps_each``), SHA-256 per event.
    """
    payload_end, details = 2 + len(PAYLOAD_FIELDS), PAYLOAD_FIELDS.index("details")
    payloads = [list(row[2:payload_end]) for row in rows]
    texts = [values[details] for values in payloads]
    if texts and type(texts[0]) is str:  # PostgreSQL: JSON text (the ORM on SQLite decodes it)
        for values, decoded in zip(payloads, decode_all(texts), strict=True):
            values[details] = decoded
    sha256, domain = hashlib.sha256, PAYLOAD_DOMAIN
    digests = [sha256(domain + text.encode("ascii")).hexdigest() for text in canonical.dumps_each(payloads)]
    return [
        sha256(f"{EVENT_DOMAIN}\n{row[-2]}\n{row[0]}\n{row[1]}\n{digest}".encode()).hexdigest()
        for row, digest in zip(rows, digests, strict=True)
    ]


def _recomputed_hash(row: Sequence) -> str:
    """One row's hash, encoded on its own (how a mismatch found in a batch is confirmed)."""
    values = list(row[2 : 2 + len(PAYLOAD_FIELDS)])
    details = PAYLOAD_FIELDS.index("details")
    if type(values[details]) is str:
        values[details] = json.loads(values[details])
    digest = hashlib.sha256(PAYLOAD_DOMAIN + canonical.encode(values)).hexdigest()
    return hashlib.sha256(f"{EVENT_DOMAIN}\n{row[-2]}\n{row[0]}\n{row[1]}\n{digest}".encode()).hexdigest()


def _starting_point(from_seq: int, archived: Boundary | None = None) -> tuple[str, str | None]:
    """The hash and time of the sealed event just before ``from_seq`` (numbers may have gaps);
    right after an archived range, its last event's (``audit.archive``)."""
    if archived is not None and from_seq == archived.last_seq + 1:
        return archived.last_hash, archived.last_occurred_at
    if from_seq <= 1:
        return GENESIS_HASH, None
    before = (
        AuditEvent.objects.filter(seq__lt=from_seq, hash__isnull=False)
        .order_by("-seq")
        .values_list("hash", "occurred_at")
        .first()
    )
    if before is None:
        raise ChainBroken(from_seq - 1, "the event before --from is missing")
    return before[0], format_time(before[1])


def _skew() -> timedelta:
    return timedelta(seconds=settings.AUDIT_TIME_SKEW_SECONDS)


def _back_dated(occurred_at: str, latest: str) -> bool:
    """Whether ``occurred_at`` is earlier than ``latest`` (both canonical text) by more than the skew.

    Concurrent writers commit out of seq order, so a time may be a moment earlier than the
    one before it; text order is time order, so the common case costs one comparison.
    """
    if occurred_at >= latest:
        return False
    return _parse(latest) - _parse(occurred_at) > _skew()


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _link_failure(seq: int, last_seq: int) -> ChainBroken:
    """A broken link: named a gap when numbers are missing before it, else a broken link."""
    if seq > last_seq + 1:
        return ChainBroken(last_seq + 1, GAP.format(previous=last_seq, found=seq))
    return ChainBroken(seq, BROKEN_LINK)


def _check_rows(
    rows: Iterable[Sequence],
    from_seq: int,
    prev_hash: str,
    prev_time: str | None,
    anchors: dict[int, tuple[str, str]],
    unsealed: list[int] | None = None,
) -> tuple[int, int, str, str | None]:
    """Check every row in order; returns (count, last seq, last hash, latest time) or raises ChainBroken.

    Numbers may have gaps (a writer that rolled back); every event must link to the one
    before it. Times are canonical text (fixed width, so text order is time order), each
    checked against the latest before it (``_back_dated``). With ``prev_time`` None the
    first row's time is not compared (nothing before it, or the caller compares it).

    An unsealed row (no hash) is not part of the chain: it is passed over as if absent, and
    the first one's seq is appended to ``unsealed`` (empty until then) for the caller to
    judge (``_check_none_left_out``).
    """
    last_seq, count, rows = from_seq - 1, 0, iter(rows)
    collecting = gc.isenabled()
    gc.disable()  # a chunk keeps thousands of young containers alive: the cycle collector would rescan them
    try:
        while chunk := list(itertools.islice(rows, CHUNK_SIZE)):
            sealed = [row for row in chunk if row[-1] is not None]
            if len(sealed) < len(chunk):
                if unsealed is not None and not unsealed:
                    unsealed.append(next(row[0] for row in chunk if row[-1] is None))
                chunk = sealed
            for row, recomputed in zip(chunk, _recomputed_hashes(chunk), strict=True):
                seq, occurred_at, stored_prev, stored_hash = row[0], row[1], row[-2], row[-1]
                if stored_prev != prev_hash:
                    raise _link_failure(seq, last_seq)
                if recomputed != stored_hash and _recomputed_hash(row) != stored_hash:
                    raise ChainBroken(seq, HASH_MISMATCH)
                if prev_time is not None and occurred_at < prev_time and _back_dated(occurred_at, prev_time):
                    raise ChainBroken(seq, BACK_DATED)
                anchor = anchors.get(seq)
                if anchor is not None and anchor[0] != stored_hash:
                    raise ChainBroken(seq, f"hash differs from the {anchor[1]} (chain rewritten)")
                last_seq, prev_hash = seq, stored_hash
                if prev_time is None or occurred_at > prev_time:
                    prev_time = occurred_at
                count += 1
    except ChainBroken as error:
        error.progress = (count, last_seq, prev_hash)  # what was verified before the break
        raise
    finally:
        if collecting:
            gc.enable()
    return count, last_seq, prev_hash, prev_time


def verify(
    *,
    from_seq: int = 1,
    checkpoint_dir: Path | str | None = None,
    progress: bool = False,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    resume_after: int | None = None,
) -> Verification:
    """Verify the chain from ``from_seq`` and return the outcome; never raises for tampering.

    Incremental (``resume_after``, the head of the last verification that reached back to a
    trusted start): begin after the newest signed checkpoint at or below it. The event that
    checkpoint names must still carry the signed hash, and the first event checked must link
    to it, so the work is what was added since, anchored by a signature rather than by a
    stored hash. Without such a checkpoint the run starts at ``from_seq``.

    Fails on: a checkpoint not signed by a trusted key; a broken prev_hash link (events
    missing, inserted or reordered; numbers themselves may have gaps); a recomputed hash
    that differs; a timestamp earlier than one before it by more than
    ``AUDIT_TIME_SKEW_SECONDS``; a hash differing from a signed checkpoint or the chain
    head; a chain shorter than a checkpoint or the head (truncated tail); an event below the
    head left unsealed. Events after the head that the sealer has not chained yet are
    counted, with the oldest one's age, not failed: the append-only role and triggers guard
    them until then, and oversight alerts when one waits too long. ``workers`` (default
    ``AUDIT_VERIFY_WORKERS``) processes share a large ledger on PostgreSQL; the outcome does
    not depend on their number. ``on_progress``
    is called now and then with (events checked, events in all) for a page to show.
    """
    from_seq = max(1, from_seq)
    archived = archive_boundary()
    if archived is not None:  # the archived months are checked from their exports
        from_seq = max(from_seq, archived.last_seq + 1)
    directory = Path(checkpoint_dir or settings.AUDIT_CHECKPOINT_DIR)
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    count, last_seq, last_hash, sealed, start = 0, from_seq - 1, GENESIS_HASH, [], None
    try:
        every = checkpoint_store.load_verified(directory)
        for checkpoint in every:  # a checkpoint at the archived range's last event anchors its hash
            if archived is not None and checkpoint.seq == archived.last_seq and checkpoint.head != archived.last_hash:
                raise ChainBroken(
                    checkpoint.seq, f"the archived range's last hash differs from the signed checkpoint "
                    f"{Path(checkpoint.path).name}"
                )
        if resume_after is not None:
            start = max((c for c in every if from_seq <= c.seq <= resume_after), key=lambda c: c.seq, default=None)
        if start is not None:
            from_seq, last_seq = start.seq + 1, start.seq
        sealed = [c for c in every if c.seq >= from_seq]
        anchors = {c.seq: (c.head, f"signed checkpoint {Path(c.path).name}") for c in sealed}
        if head and head[0] >= from_seq and head[0] not in anchors:
            anchors[head[0]] = (head[1], "chain head row")
        _check_archived_gone(archived)
        prev_hash, prev_time = _starting_point(from_seq, archived)
        if start is not None and prev_hash != start.head:
            raise ChainBroken(
                start.seq, f"hash differs from the signed checkpoint {Path(start.path).name} (chain rewritten)"
            )
        last_hash = prev_hash
        total = max(0, (head[0] if head else 0) - from_seq + 1)
        workers = default_workers() if workers is None else workers
        ranges = _plan(from_seq, total, workers)
        if len(ranges) > 1:
            with tqdm(total=total, unit="ev", mininterval=1, disable=not progress) as bar:
                if on_progress is not None:
                    bar.update = _reporting_update(bar.update, on_progress, total)
                count, last_seq, last_hash, first_unsealed = _check_in_parallel(
                    ranges, workers, prev_hash, prev_time, anchors, bar
                )
        else:
            # In the caller's transaction, or none: ``on_progress`` may write between chunks
            # (a run's progress row), and those writes must be seen while the run goes on.
            unsealed: list[int] = []
            rows = _rows(from_seq)
            if progress:
                rows = tqdm(rows, total=total, unit="ev", mininterval=1)
            if on_progress is not None:
                rows = _reporting_rows(rows, on_progress, total)
            count, last_seq, last_hash, _ = _check_rows(rows, from_seq, prev_hash, prev_time, anchors, unsealed)
            first_unsealed = unsealed[0] if unsealed else None
        _check_length(last_seq, sealed, head)
        _check_none_left_out(head, first_unsealed)
    except (ChainBroken, checkpoint_store.CheckpointError) as error:
        count, last_seq, last_hash = getattr(error, "progress", (count, last_seq, last_hash))
        return Verification(False, count, last_seq, last_hash, error.seq, error.reason, len(sealed), from_seq)
    resumed_after = start.seq if start is not None else None
    unsealed, age = _unsealed()
    return Verification(
        True,
        count,
        last_seq,
        last_hash,
        checkpoints=len(sealed),
        from_seq=from_seq,
        resumed_after=resumed_after,
        unsealed=unsealed,
        unsealed_age_seconds=age,
    )


def _check_archived_gone(archived: Boundary | None) -> None:
    """Verification skips the archived range, so none of its events may still be in the table
    but the range's stragglers: events of the next month numbered below its last one, which
    occurred within ``AUDIT_TIME_SKEW_SECONDS`` after the month's end (``audit.archive``).

    This is what stops an ``audit.archived`` event written by hand (the runtime role may
    INSERT any event) from hiding live rows from verification: whatever range and month end it
    claims, every row it would skip must be gone, or a straggler of that very month end.
    """
    if archived is None:
        return
    month_end = _parse(archived.month_end)
    left = (
        AuditEvent.objects.filter(seq__lte=archived.last_seq)
        .exclude(occurred_at__gte=month_end, occurred_at__lt=month_end + _skew())
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    if left is not None:
        raise ChainBroken(left, ARCHIVED_STILL_HERE)


def _check_none_left_out(head: tuple | None, first_unsealed: int | None) -> None:
    """No event below the sealed head may be unsealed: the sealer never passes one (``audit.sealer``),
    so such an event was skipped by a forged seal, or its seal was removed.

    ``first_unsealed`` is the first unsealed event the checks passed over (from ``from_seq``
    on): the same rows as a query for unsealed events below the head would find, noted during
    the one pass instead of a second scan of the table.
    """
    if head is not None and first_unsealed is not None and first_unsealed < head[0]:
        raise ChainBroken(first_unsealed, LEFT_OUT)


@contextmanager
def _streamed() -> Iterator[None]:
    """A worker's transaction for reading its range on PostgreSQL (see ``_postgres_rows``); it
    writes nothing, and nothing else runs in it."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        yield


def _unsealed() -> tuple[int, int | None]:
    """How many committed events wait for the sealer, and the oldest one's age in seconds."""
    from .sealer import waiting

    events = waiting()
    oldest = events.order_by("seq").values_list("occurred_at", flat=True).first()
    if oldest is None:
        return 0, None
    return events.count(), max(int((timezone.now() - oldest).total_seconds()), 0)


PROGRESS_EVERY = 5_000


def _reporting_rows(rows: Iterable, on_progress: Callable[[int, int], None], total: int) -> Iterator:
    """Pass the rows through, telling ``on_progress`` every ``PROGRESS_EVERY`` rows."""
    for number, row in enumerate(rows, start=1):
        if number % PROGRESS_EVERY == 0:
            on_progress(number, total)
        yield row


def _reporting_update(update: Callable, on_progress: Callable[[int, int], None], total: int) -> Callable:
    done = 0

    def reporting(amount: int = 1):
        nonlocal done
        done += amount
        on_progress(done, total)
        return update(amount)

    return reporting


def default_workers() -> int:
    return settings.AUDIT_VERIFY_WORKERS or min(os.cpu_count() or 1, 4)


def _plan(from_seq: int, total: int, workers: int) -> list[tuple[int, int]]:
    """Seq ranges (first, last) to check; one range (to the end) unless workers pay off.

    The last range runs to the end of the table, as the single loop does: events past the
    head are checked too (and then the head anchor names the break).
    """
    if workers < 2 or total < max(PARALLEL_MIN_EVENTS, 2) or not _can_fork():
        return [(from_seq, LAST_SEQ)]
    parts = min(workers * RANGES_PER_WORKER, total)
    firsts = [from_seq + total * part // parts for part in range(parts)]
    return [(first, after - 1) for first, after in itertools.pairwise(firsts)] + [(firsts[-1], LAST_SEQ)]


def _can_fork() -> bool:
    """Workers are forked children that open their own connections, so the parent closes its
    connections first. That is only harmless outside a transaction: inside one, closing
    would end it, and the children would not see its uncommitted rows anyway."""
    if connection.vendor != "postgresql" or "fork" not in multiprocessing.get_all_start_methods():
        return False
    if multiprocessing.current_process().daemon:  # e.g. a pool worker: it may not have children
        return False
    return not any(db.in_atomic_block for db in connections.all(initialized_only=True))


def _check_in_parallel(
    ranges: list[tuple[int, int]], workers: int, prev_hash: str, prev_time: str | None, anchors: dict, bar: tqdm
) -> tuple[int, int, str, int | None]:
    """Check the ranges in forked workers, then join them in seq order as the single loop would.

    Fork, not spawn or forkserver: the children start in a fraction of a millisecond with the
    parent's settings as they are (a test database's name, a checkpoint folder), which a
    fresh interpreter would have to be told. The parent closes its connections before the
    fork, so no child inherits a live database session (closing an inherited one would end
    the parent's session on the server); each child opens its own. The results come back
    in seq order. The pool is closed and joined, never terminated, even after a failure:
    a worker killed mid-query would leave its server session running until the query ends.
    """
    tasks = [(first, last, {seq: a for seq, a in anchors.items() if first <= seq <= last}) for first, last in ranges]
    connections.close_all()
    gc.freeze()  # the children's collector leaves the parent's objects alone (no copy-on-write storm)
    try:
        pool = multiprocessing.get_context("fork").Pool(min(workers, len(tasks)))
    finally:
        gc.unfreeze()
    try:
        return _join(_counted_ranges(pool.imap(_check_range, tasks), bar), ranges[0][0], prev_hash, prev_time)
    finally:
        pool.close()
        pool.join()


def _counted_ranges(outcomes: Iterable[tuple | None], bar: tqdm) -> Iterator[tuple | None]:
    for outcome in outcomes:
        if outcome is not None and outcome[2] is not None:
            bar.update(outcome[2][0])
        yield outcome


def _check_range(task: tuple[int, int, dict]) -> tuple | None:
    """In a worker: check one range with ``_check_rows``, its first sealed row taken on trust.

    Returns None for an empty range, else (first sealed row's seq, time, prev_hash; the
    failure as (seq, reason) or None; (count, last seq, last hash, last time) verified before
    any failure; the first unsealed row's seq or None). For a range with no sealed row the
    first three are None. The parent checks the first sealed row's link and time against the
    range before.
    """
    first_seq, last_seq, anchors = task
    unsealed: list[int] = []
    try:
        with _streamed():
            rows = iter(_rows(first_seq, last_seq))
            first = next(rows, None)
            while first is not None and first[-1] is None:  # unsealed: passed over, as _check_rows does
                if not unsealed:
                    unsealed.append(first[0])
                first = next(rows, None)
            if first is None:
                return (None, None, None, unsealed[0]) if unsealed else None
            opening = (first[0], first[1], first[-2])
            try:
                done = _check_rows(itertools.chain([first], rows), first_seq, first[-2], None, anchors, unsealed)
            except ChainBroken as error:
                return opening, (error.seq, error.reason), (*error.progress, None), None
            return opening, None, done, (unsealed[0] if unsealed else None)
    finally:
        connections.close_all()


def _join(outcomes: Iterable[tuple | None], from_seq: int, prev_hash: str, prev_time: str | None) -> tuple:
    """Join range outcomes in seq order; the first failure in seq order is the single loop's.

    A range's first row was checked by its worker for everything but its link and its time;
    those are checked here, in the single loop's order (gap, link, hash, time, anchor).
    Returns (count, last seq, last hash, first unsealed seq or None), as the single loop finds them.
    """
    count, previous, first_unsealed = 0, from_seq - 1, None
    for outcome in outcomes:
        if outcome is None:
            continue
        opening, failure, done, unsealed = outcome
        if first_unsealed is None:
            first_unsealed = unsealed
        if opening is None:  # no sealed row in the range
            continue
        seq, occurred_at, stored_prev = opening
        try:
            if stored_prev != prev_hash:
                raise _link_failure(seq, previous)
            content_changed = failure == (seq, HASH_MISMATCH)
            if not content_changed and prev_time is not None and _back_dated(occurred_at, prev_time):
                raise ChainBroken(seq, BACK_DATED)
        except ChainBroken as error:
            error.progress = (count, previous, prev_hash)
            raise
        range_count, last_seq, last_hash, last_time = done
        if failure is not None:
            error = ChainBroken(*failure)  # the range's progress starts where the checks above ended
            error.progress = (count + range_count, last_seq, last_hash)
            raise error
        count, previous, prev_hash = count + range_count, last_seq, last_hash
        prev_time = last_time if prev_time is None or (last_time and last_time > prev_time) else prev_time
    return count, previous, prev_hash, first_unsealed


def _check_length(last_seq: int, sealed: list, head: tuple | None) -> None:
    longest = max((c.seq for c in sealed), default=0)
    if longest > last_seq:
        raise ChainBroken(
            last_seq + 1, f"chain ends at {last_seq} but a signed checkpoint covers {longest} (truncated)"
        )
    if head is not None and head[0] > last_seq:
        raise ChainBroken(last_seq + 1, f"chain ends at {last_seq} but the chain head says {head[0]} (truncated)")
    if head is None and last_seq > 0:
        raise ChainBroken(last_seq + 1, "the chain head row is missing")
