"""CSV and JSON-lines export of audit events, safe for spreadsheets and log pipelines.

CSV: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is prefixed
with ``'`` so a spreadsheet never evaluates it (formula injection), and control
characters (C0, DEL, C1, U+2028/U+2029) are written as visible ``\\xNN`` / ``\\uNNNN``
escapes, so one event is always exactly one physical line. JSON-lines: ``ensure_ascii``
JSON, which escapes every control and non-ASCII character; one event per line.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from .ledger import HASHED_FIELDS, format_time

COLUMNS = (*HASHED_FIELDS, "hash")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    text = str(value)
    if text.startswith(FORMULA_START):
        text = "'" + text
    return CONTROL.sub(_escape, text)


def _plain(row: tuple) -> dict[str, Any]:
    record = dict(zip(COLUMNS, row, strict=True))
    record["occurred_at"] = format_time(record["occurred_at"])
    return record


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[tuple]) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(COLUMNS)
    for row in rows:
        record = _plain(row)
        yield writer.writerow([csv_cell(record[column]) for column in COLUMNS])


def jsonl_lines(rows: Iterable[tuple]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(_plain(row), sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"


def export_rows(events: QuerySet) -> Iterator[tuple]:
    return events.order_by("seq").values_list(*COLUMNS).iterator(chunk_size=2000)
