"""Custos's one canonical JSON encoding (issue #22).

Every digest or hash Custos computes over JSON uses this encoding:

- object keys sorted (by code point), no whitespace: ``separators=(",", ":")``;
- every non-ASCII character, DEL and every control character escaped (``ensure_ascii=True``:
  ``\\uXXXX``, surrogate pairs above U+FFFF; ``\\n``, ``\\t`` and the other short escapes);
- encoded as ASCII bytes (so also valid UTF-8).

In Python that is ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``;
:func:`dumps` gives the same text from one encoder built once (``json.JSONEncoder.encode`` uses
the C encoder of the standard library when it is available). Values must be JSON types: str, int,
bool, None, lists and dicts with string keys (the ledger stores floats as strings, see
``audit.ledger.clean_details``).

Users: the ledger's payload digest (``audit.ledger``, encoding version 1 of events, unchanged)
and its verifier (``audit.verification``, which encodes a batch of events in one call, see
:func:`dumps_each`); the digest of a query's result (``investigations.gateway``, result digest
version 2) and the signed transparency report (``investigations.transparency``, format 2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, check_circular=False)

# A value no stored string can hold (PostgreSQL text and jsonb refuse NUL; the ledger replaces
# it), encoded between the values of a batch: ``,"\u0000",`` never occurs inside the encoding
# of one value unless the value holds a NUL string, and :func:`dumps_each` checks the count.
_SEPARATOR = "\x00"
_ENCODED_SEPARATOR = ',"\\u0000",'


def dumps(value: Any) -> str:
    """The canonical text of ``value`` (ASCII only)."""
    return _ENCODER.encode(value)


def encode(value: Any) -> bytes:
    """The canonical bytes of ``value``."""
    return _ENCODER.encode(value).encode("ascii")


def dumps_each(values: Sequence[Any]) -> list[str]:
    """``[dumps(value) for value in values]`` with one call into the encoder for the batch.

    The values are encoded as one list with a separator string between them and the text is
    cut at the separators. If a value itself holds the separator (a NUL string, which PostgreSQL
    cannot store and the ledger never writes), the cut gives more pieces than values; then each
    value is encoded alone. A caller that finds a piece wrong re-encodes that value with
    :func:`dumps` before it concludes anything (``audit.verification`` does).
    """
    if not values:
        return []
    interleaved = [_SEPARATOR] * (2 * len(values) - 1)
    interleaved[::2] = values
    pieces = _ENCODER.encode(interleaved)[1:-1].split(_ENCODED_SEPARATOR)
    if len(pieces) != len(values):
        return [dumps(value) for value in values]
    return pieces
