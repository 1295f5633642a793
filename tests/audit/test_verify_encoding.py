"""The verifier's fast loop hashes exactly what the ledger hashes (audit.ledger's encoding)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit import canonical
from audit.ledger import GENESIS_HASH, HASHED_FIELDS, format_time, hash_values
from audit.verification import HASH_MISMATCH, ChainBroken, _check_rows, decode_all

text = st.text(max_size=30)  # any code point: non-ASCII, control characters, DEL, surrogates excluded below
json_leaf = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | text
details = st.dictionaries(text, st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(text, inner, max_size=3), max_leaves=8), max_size=5)


def _documented(value) -> str:
    """The encoding as docs/audit.md states it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(json_leaf, details), min_size=1, max_size=11))
def test_canonical_encoding_is_the_documented_one(values):
    assert canonical.dumps(values) == _documented(values)
    assert canonical.encode(values) == _documented(values).encode("ascii")


payload = st.lists(st.one_of(json_leaf, details), min_size=11, max_size=11)


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(payload, max_size=20))
def test_a_batch_encodes_each_value_as_alone(values):
    assert canonical.dumps_each(values) == [_documented(value) for value in values]


@pytest.mark.parametrize(
    "values",
    [
        [["\x00"], ["a"]],  # the separator itself as a value's string
        [[1, "\x00", 2], [3]],
        [{"\x00": ["\x00", "\x00"]}, ["\\u0000"], [",\"\\u0000\","]],
        [],
    ],
)
def test_a_batch_holding_the_separator_still_encodes_each_value_as_alone(values):
    assert canonical.dumps_each(values) == [_documented(value) for value in values]


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(details, max_size=10))
def test_details_decoded_in_one_call_as_one_by_one(values):
    texts = [json.dumps(value) for value in values]  # jsonb's text: one JSON value each
    assert decode_all(texts) == [json.loads(text) for text in texts]
    spaced = [" " + text + " " for text in texts]  # not what PostgreSQL sends, but never decoded differently
    assert decode_all(spaced) == [json.loads(text) for text in spaced]


def _chain(payloads: list[tuple]) -> list[tuple]:
    rows, prev = [], GENESIS_HASH
    for seq, payload in enumerate(payloads, start=1):
        values = (seq, datetime(2026, 3, 1, 12, 0, seq, 250_000, tzinfo=UTC), *payload, prev)
        prev = hash_values(values)
        rows.append((seq, format_time(values[1]), *payload, values[-1], prev))
    return rows


PAYLOADS = [
    (7, "7", "lead", "query.completed", "investigations.dataquery", "12", "INV-2026-0001",
     {"rows": 3, "digest": "ab" * 32, "nested": {"z": [1, None, True], "a": "ü\u2028\x7f\x01"}},
     "10.0.0.1", "UA", "r1"),
    (None, "", "", "system.startup", "", "", "", {}, "", "", ""),
    (8, "8", "naïve-名前", "case.opened", "investigations.case", "3", "INV-2026-0002", {"k": 2**65}, "::1", "é", ""),
]


def test_fast_loop_accepts_a_chain_hashed_by_the_ledger():
    rows = _chain(PAYLOADS)
    assert len(rows[0]) == len(HASHED_FIELDS) + 1
    assert _check_rows(rows, 1, GENESIS_HASH, None, {}) == (3, 3, rows[-1][-1], rows[-1][1])
    as_text = [(*row[:9], json.dumps(row[9]), *row[10:]) for row in rows]  # details as PostgreSQL hands it over
    assert _check_rows(as_text, 1, GENESIS_HASH, None, {}) == (3, 3, rows[-1][-1], rows[-1][1])


@pytest.mark.parametrize("field", range(2, 13))
def test_fast_loop_detects_a_change_in_any_hashed_field(field):
    rows = [list(row) for row in _chain(PAYLOADS)]
    original = rows[1][field]
    rows[1][field] = {"changed": True} if isinstance(original, dict) else (1 if original is None else None)
    with pytest.raises(ChainBroken) as broken:
        _check_rows(rows, 1, GENESIS_HASH, None, {})
    assert broken.value.seq == 2 and "hash mismatch" in broken.value.reason
    assert broken.value.progress == (1, 1, rows[0][-1])


def test_fast_loop_detects_a_back_dated_event(settings):
    settings.AUDIT_TIME_SKEW_SECONDS = 0
    rows = _chain(PAYLOADS)
    # Re-hash event 3 with a time before event 2's: the hash is right, the order of time is not.
    values = (3, datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC), *PAYLOADS[2], rows[1][-1])
    forged = (3, format_time(values[1]), *PAYLOADS[2], rows[1][-1], hash_values(values))
    with pytest.raises(ChainBroken) as broken:
        _check_rows([*rows[:2], forged], 1, GENESIS_HASH, None, {})
    assert broken.value.seq == 3 and "back-dated" in broken.value.reason


@pytest.mark.parametrize(("earlier", "accepted"), [(timedelta(seconds=59), True), (timedelta(seconds=61), False)])
def test_times_out_of_seq_order_within_the_skew_are_concurrent_writers_not_back_dating(settings, earlier, accepted):
    """Writers commit in any order, so a time may precede the one before it by a moment
    (AUDIT_TIME_SKEW_SECONDS); further back is back-dating, whatever came in between."""
    settings.AUDIT_TIME_SKEW_SECONDS = 60
    rows = _chain(PAYLOADS)
    latest = datetime.strptime(rows[1][1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    values = (3, latest - earlier, *PAYLOADS[2], rows[1][-1])
    moved = (3, format_time(values[1]), *PAYLOADS[2], rows[1][-1], hash_values(values))
    if accepted:
        assert _check_rows([*rows[:2], moved], 1, GENESIS_HASH, None, {})[:2] == (3, 3)
    else:
        with pytest.raises(ChainBroken) as broken:
            _check_rows([*rows[:2], moved], 1, GENESIS_HASH, None, {})
        assert broken.value.seq == 3 and "back-dated" in broken.value.reason


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 10_000])
def test_chunks_of_any_size_give_the_same_outcome(monkeypatch, chunk_size):
    monkeypatch.setattr("audit.verification.CHUNK_SIZE", chunk_size)
    rows = _chain(PAYLOADS * 3)
    assert _check_rows(rows, 1, GENESIS_HASH, None, {}) == (9, 9, rows[-1][-1], rows[-1][1])
    changed = [list(row) for row in rows]
    changed[4][9] = {"changed": True}
    changed[7][12] = "other"
    with pytest.raises(ChainBroken) as broken:
        _check_rows(changed, 1, GENESIS_HASH, None, {})
    assert broken.value.seq == 5 and "hash mismatch" in broken.value.reason
    assert broken.value.progress == (4, 4, rows[3][-1])


def _chain_over(unsealed: set[int]) -> list[tuple]:
    """Nine events, those numbered in ``unsealed`` left without a seal and the rest chained over them."""
    rows, prev = [], GENESIS_HASH
    for seq, payload in enumerate(PAYLOADS * 3, start=1):
        moment = datetime(2026, 3, 1, 12, 0, seq, 250_000, tzinfo=UTC)
        if seq in unsealed:
            rows.append((seq, format_time(moment), *payload, None, None))
            continue
        values = (seq, moment, *payload, prev)
        prev = hash_values(values)
        rows.append((seq, format_time(moment), *payload, values[-1], prev))
    return rows


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 10_000])
def test_unsealed_rows_are_passed_over_and_the_first_is_noted(monkeypatch, chunk_size):
    monkeypatch.setattr("audit.verification.CHUNK_SIZE", chunk_size)
    rows = _chain_over({4, 5, 7})
    unsealed: list[int] = []
    assert _check_rows(rows, 1, GENESIS_HASH, None, {}, unsealed) == (6, 9, rows[-1][-1], rows[-1][1])
    assert unsealed == [4]
    none: list[int] = []
    assert _check_rows(_chain(PAYLOADS * 3), 1, GENESIS_HASH, None, {}, none)[0] == 9
    assert none == []


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 10_000])
def test_the_sealed_rows_around_unsealed_ones_are_checked_in_full(monkeypatch, chunk_size):
    """Passing over an unsealed row skips no check of the others: content, link, time."""
    monkeypatch.setattr("audit.verification.CHUNK_SIZE", chunk_size)
    rows = _chain_over({4, 5})
    edited = [list(row) for row in rows]
    edited[5][9] = {"changed": True}  # event 6's details
    with pytest.raises(ChainBroken) as broken:
        _check_rows(edited, 1, GENESIS_HASH, None, {}, [])
    assert (broken.value.seq, broken.value.reason, broken.value.progress) == (6, HASH_MISMATCH, (3, 3, rows[2][-1]))

    edited = [list(row) for row in rows]
    edited[6][12] = "other"  # event 7's request_id, a plain column
    with pytest.raises(ChainBroken) as broken:
        _check_rows(edited, 1, GENESIS_HASH, None, {}, [])
    assert (broken.value.seq, broken.value.reason) == (7, HASH_MISMATCH)

    relinked = [list(row) for row in rows]
    relinked[5][-2] = "f" * 64  # event 6 no longer links to event 3 (the one before it in the chain)
    with pytest.raises(ChainBroken) as broken:
        _check_rows(relinked, 1, GENESIS_HASH, None, {}, [])
    assert broken.value.seq == 4 and "the event after 3 is not linked to it, next found 6" in broken.value.reason

    without_3 = [row for row in rows if row[0] != 3]  # deleted: event 6 links to it
    with pytest.raises(ChainBroken) as broken:
        _check_rows(without_3, 1, GENESIS_HASH, None, {}, [])
    assert broken.value.seq == 3 and "sequence gap" in broken.value.reason


def test_a_back_dated_row_after_unsealed_ones_is_found(settings):
    settings.AUDIT_TIME_SKEW_SECONDS = 0
    rows = _chain_over({4, 5})
    # Re-hash event 6 with a time before event 3's: every hash and link is right, the order of time is not.
    values = (6, datetime(2026, 3, 1, 12, 0, 2, tzinfo=UTC), *PAYLOADS[2], rows[2][-1])
    forged = (6, format_time(values[1]), *PAYLOADS[2], rows[2][-1], hash_values(values))
    with pytest.raises(ChainBroken) as broken:
        _check_rows([*rows[:5], forged], 1, GENESIS_HASH, None, {}, [])
    assert broken.value.seq == 6 and "back-dated" in broken.value.reason
