"""Verification in parallel seq ranges gives exactly the single loop's outcome (PostgreSQL).

The workers are forked processes with their own connections, so these tests commit their
rows (transactional tests) and force the parallel path with a low threshold.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit import verification
from audit.checkpoints import Checkpoint, public_key_text, signing_key
from audit.ledger import HASHED_FIELDS, format_time, hash_values
from audit.verification import verify

from .conftest import build_chain, insert_raw, leave_out, owner_sql, rows, set_head, triggers_off

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

COUNT = 400
WORKERS = 2


@pytest.fixture(autouse=True)
def parallel_from_few_events(monkeypatch):
    """Any ledger is large enough for workers; record every parallel run."""
    monkeypatch.setattr(verification, "PARALLEL_MIN_EVENTS", 2)
    runs = []
    original = verification._check_in_parallel

    def spy(ranges, *args):
        runs.append(ranges)
        return original(ranges, *args)

    monkeypatch.setattr(verification, "_check_in_parallel", spy)
    return runs


@pytest.fixture
def chain(db) -> list[tuple]:
    values = build_chain(COUNT)
    insert_raw(values)
    set_head(COUNT, values[-1][-1])
    return values


@pytest.fixture
def ranges(chain) -> list[tuple[int, int]]:
    planned = verification._plan(1, COUNT, WORKERS)
    assert len(planned) == WORKERS * verification.RANGES_PER_WORKER
    return planned


def both(parallel_from_few_events, **options) -> verification.Verification:
    """Verify with workers and in one process; they must agree in every field."""
    single = verify(workers=1, **options)
    runs_before = len(parallel_from_few_events)
    parallel = verify(workers=WORKERS, **options)
    assert len(parallel_from_few_events) == runs_before + 1, "the parallel path was not taken"
    assert parallel == single
    return parallel


def assert_fails_at(runs, seq: int, reason: str, **options) -> verification.Verification:
    result = both(runs, **options)
    assert (result.ok, result.bad_seq) == (False, seq), result.summary()
    assert reason in result.reason
    return result


def rehash_from(seq: int, change: dict[str, object] | None = None, shift_time: timedelta | None = None) -> str:
    """As the owner: change event ``seq`` and re-hash it and every later event; return the new head hash.

    ``shift_time`` moves event ``seq`` only; with ``change`` empty and no shift the link from
    ``seq - 1`` to ``seq`` is what is forged (the first prev_hash is replaced).
    """
    original = rows(seq)
    prev_hash = "f" * 64
    if change is not None or shift_time is not None:
        prev_hash = original[0][HASHED_FIELDS.index("prev_hash")]
    with triggers_off(), connection.cursor() as cursor:
        for row in original:
            values = list(row[:-1])
            if values[0] == seq:
                for field, value in (change or {}).items():
                    values[HASHED_FIELDS.index(field)] = value
                values[1] += shift_time or timedelta(0)
            values[-1] = prev_hash
            prev_hash = hash_values(values)
            cursor.execute(
                "UPDATE audit_auditevent SET target_id = %s, occurred_at = %s, prev_hash = %s, hash = %s"
                " WHERE seq = %s",
                [values[HASHED_FIELDS.index("target_id")], values[1], values[-1], prev_hash, values[0]],
            )
    set_head(original[-1][0], prev_hash)
    return prev_hash


def test_clean_ledger_gives_the_same_verification(chain, parallel_from_few_events):
    result = both(parallel_from_few_events)
    assert (result.ok, result.count, result.head_seq, result.head_hash) == (True, COUNT, COUNT, chain[-1][-1])
    assert parallel_from_few_events[-1] == verification._plan(1, COUNT, WORKERS)


def test_clean_ledger_from_a_sequence_number(chain, parallel_from_few_events):
    result = both(parallel_from_few_events, from_seq=123)
    assert (result.ok, result.count, result.head_seq) == (True, COUNT - 122, COUNT)


def test_edit_in_the_second_range(ranges, parallel_from_few_events):
    seq = ranges[1][0] + 5
    owner_sql("UPDATE audit_auditevent SET case_reference = 'INV-2026-9999' WHERE seq = %s", [seq])
    result = assert_fails_at(parallel_from_few_events, seq, "hash mismatch")
    assert (result.count, result.head_seq) == (seq - 1, seq - 1)


def test_deletion_in_the_second_range(ranges, parallel_from_few_events):
    seq = ranges[1][0] + 7
    owner_sql("DELETE FROM audit_auditevent WHERE seq = %s", [seq])
    assert_fails_at(parallel_from_few_events, seq, "sequence gap")


def test_insertion_in_the_second_range(ranges, parallel_from_few_events):
    """A forged event slipped in at ``seq``, the later events renumbered and the next one re-linked to it."""
    seq = ranges[1][0] + 3
    before = rows(seq - 1)[0]
    values = [seq, before[1], *before[2:-2], before[-1]]
    values[HASHED_FIELDS.index("details")] = {"forged": True}
    forged = hash_values(values)
    with triggers_off(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = -seq WHERE seq >= %s", [seq])
        cursor.execute("UPDATE audit_auditevent SET seq = 1 - seq WHERE seq < 0")
        cursor.execute("UPDATE audit_auditevent SET prev_hash = %s WHERE seq = %s", [forged, seq + 1])
    insert_raw([(*values, forged)])
    assert_fails_at(parallel_from_few_events, seq + 1, "hash mismatch")


def test_reorder_in_the_second_range(ranges, parallel_from_few_events):
    seq = ranges[1][0] + 10
    with triggers_off(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = -1 WHERE seq = %s", [seq])
        cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [seq, seq + 1])
        cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = -1", [seq + 1])
    assert_fails_at(parallel_from_few_events, seq, "prev_hash")


def test_forged_link_at_the_start_of_a_range(ranges, parallel_from_few_events):
    """Every range is internally consistent; only the link between two ranges is broken."""
    seq = ranges[2][0]
    rehash_from(seq)
    result = assert_fails_at(parallel_from_few_events, seq, "prev_hash")
    assert (result.count, result.head_seq, result.head_hash) == (seq - 1, seq - 1, rows(seq - 1)[0][-1])


def test_back_dated_start_of_a_range(ranges, parallel_from_few_events):
    seq = ranges[1][0]
    rehash_from(seq, shift_time=-timedelta(minutes=10))  # further back than AUDIT_TIME_SKEW_SECONDS
    assert_fails_at(parallel_from_few_events, seq, "back-dated")


def test_content_change_at_the_start_of_a_range_is_named_before_its_time(ranges, parallel_from_few_events):
    seq = ranges[1][0]
    owner_sql(
        "UPDATE audit_auditevent SET occurred_at = occurred_at - interval '1 second', target_id = 'x' WHERE seq = %s",
        [seq],
    )
    assert_fails_at(parallel_from_few_events, seq, "hash mismatch")


def test_deleting_the_end_of_a_range(ranges, parallel_from_few_events):
    first_missing = ranges[1][1] - 2
    owner_sql("DELETE FROM audit_auditevent WHERE seq BETWEEN %s AND %s", [first_missing, ranges[1][1]])
    result = assert_fails_at(parallel_from_few_events, first_missing, "sequence gap")
    assert f"found {ranges[2][0]}" in result.reason


def test_deleting_a_whole_range(ranges, parallel_from_few_events):
    owner_sql("DELETE FROM audit_auditevent WHERE seq BETWEEN %s AND %s", list(ranges[1]))
    result = assert_fails_at(parallel_from_few_events, ranges[1][0], "sequence gap")
    assert f"found {ranges[2][0]}" in result.reason


def test_truncated_tail(ranges, parallel_from_few_events):
    owner_sql("DELETE FROM audit_auditevent WHERE seq >= %s", [ranges[-1][0]])
    assert_fails_at(parallel_from_few_events, ranges[-1][0], "truncated")


def test_two_broken_ranges_report_the_lower_seq(ranges, parallel_from_few_events):
    owner_sql("UPDATE audit_auditevent SET target_id = 'late' WHERE seq = %s", [ranges[2][0] + 1])
    owner_sql("UPDATE audit_auditevent SET target_id = 'early' WHERE seq = %s", [ranges[1][1]])
    assert_fails_at(parallel_from_few_events, ranges[1][1], "hash mismatch")


def test_a_range_broken_at_its_start_and_an_earlier_one_at_its_end(ranges, parallel_from_few_events):
    owner_sql("DELETE FROM audit_auditevent WHERE seq = %s", [ranges[3][0]])
    owner_sql("UPDATE audit_auditevent SET target_id = 'x' WHERE seq = %s", [ranges[2][1]])
    assert_fails_at(parallel_from_few_events, ranges[2][1], "hash mismatch")


def _sign_checkpoint(seq: int, head: str, directory: Path) -> None:
    key = signing_key()
    unsigned = Checkpoint(
        seq=seq,
        head=head,
        sealed_at=format_time(timezone.now()),
        origin=settings.AUDIT_LOG_ORIGIN,
        signature="",
        key=public_key_text(key.public_key()),
    )
    signed = Checkpoint(**{**unsigned.__dict__, "signature": base64.b64encode(key.sign(unsigned.message())).decode()})
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"checkpoint-{seq:012d}-test.json").write_text(json.dumps(signed.as_json()))


def test_signed_checkpoint_inside_a_later_range(chain, ranges, parallel_from_few_events):
    anchored = ranges[2][0] + 4
    directory = Path(settings.AUDIT_CHECKPOINT_DIR)
    _sign_checkpoint(anchored, chain[anchored - 1][-1], directory)
    clean = both(parallel_from_few_events)
    assert (clean.ok, clean.checkpoints) == (True, 1)
    rehash_from(ranges[1][0] + 2, change={"target_id": "rewritten"})
    assert verify(workers=WORKERS, checkpoint_dir=directory / "none").ok  # consistent without the checkpoint
    assert_fails_at(parallel_from_few_events, anchored, "signed checkpoint")


def test_head_row_checked_in_the_last_range(chain, parallel_from_few_events):
    set_head(COUNT, "0" * 64)
    assert_fails_at(parallel_from_few_events, COUNT, "chain head row")


def test_inside_a_transaction_the_single_loop_runs(chain, parallel_from_few_events):
    from django.db import transaction

    with transaction.atomic():
        result = verify(workers=WORKERS)
    assert result.ok and parallel_from_few_events == []
    assert verify(workers=WORKERS).ok and len(parallel_from_few_events) == 1


LEFT_OUT = "not sealed although later events are"


def test_an_event_left_out_in_the_second_range(ranges, parallel_from_few_events):
    """Found in the one pass: no second scan of the table looks for unsealed events."""
    seq = ranges[1][0] + 6
    leave_out(seq)
    result = assert_fails_at(parallel_from_few_events, seq, LEFT_OUT)
    assert (result.count, result.head_seq) == (COUNT - 1, COUNT)


def test_an_event_left_out_at_the_start_of_a_range(ranges, parallel_from_few_events):
    """The range's first sealed event is the one after it, and it links over the gap to the range before."""
    seq = ranges[2][0]
    leave_out(seq, seq + 1)
    assert_fails_at(parallel_from_few_events, seq, LEFT_OUT)


def test_a_whole_range_left_out(ranges, parallel_from_few_events):
    leave_out(*range(ranges[1][0], ranges[1][1] + 1))
    assert_fails_at(parallel_from_few_events, ranges[1][0], LEFT_OUT)


def test_events_left_out_in_two_ranges_name_the_lower_seq(ranges, parallel_from_few_events):
    leave_out(ranges[1][1], ranges[3][0] + 2)
    assert_fails_at(parallel_from_few_events, ranges[1][1], LEFT_OUT)


def test_a_broken_chain_in_a_later_range_is_named_before_an_event_left_out(ranges, parallel_from_few_events):
    leave_out(ranges[0][0] + 3)
    owner_sql("UPDATE audit_auditevent SET target_id = 'x' WHERE seq = %s", [ranges[3][0] + 1])
    assert_fails_at(parallel_from_few_events, ranges[3][0] + 1, "hash mismatch")


def test_events_after_the_head_waiting_for_the_sealer_are_no_failure(chain, parallel_from_few_events):
    waiting = build_chain(3, start_seq=COUNT + 1, prev_hash=chain[-1][-1])
    insert_raw([(*row[:-2], None, None) for row in waiting])
    result = both(parallel_from_few_events)
    assert (result.ok, result.count, result.head_seq, result.unsealed) == (True, COUNT, COUNT, 3)


def test_the_workers_read_their_ranges_in_a_transaction(chain, parallel_from_few_events, monkeypatch, tmp_path):
    """Not with a cursor WITH HOLD (what Django declares in autocommit), whose rows PostgreSQL
    would compute and store in full before the first fetch."""
    original = verification._postgres_rows

    def spy(first_seq, last_seq):
        (tmp_path / f"{first_seq}").write_text(str(connection.in_atomic_block))
        return original(first_seq, last_seq)

    monkeypatch.setattr(verification, "_postgres_rows", spy)
    assert verify(workers=WORKERS).ok
    seen = {path.name: path.read_text() for path in tmp_path.iterdir() if path.name.isdigit()}
    assert seen == {str(first): "True" for first, _ in verification._plan(1, COUNT, WORKERS)}
