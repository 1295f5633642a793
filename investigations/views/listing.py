"""One way to list: a filter set over rows from an ``access`` chokepoint, sorted, paged by keyset.

The cost of a page does not grow with the rows the user may see: the page's rows are read by
keyset (``?after=`` / ``?before=`` a cursor holding the sort key of the last or first row
shown, never an OFFSET), and the two counts the page shows (what matches, everything the user
could list) stop at ``COUNT_LIMIT`` ("1000+"). Every ordering works, the default and any column
the filter set sorts by: the cursor holds the value of each ordering term, the primary key is
added as the last term when the ordering lacks it, so that (sort key, pk) is unique, and NULLs
sort last in both databases.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, OrderBy, Q, QuerySet

from accounts.http import SignedInRequest
from config.listing import count_up_to

CURSORS = ("after", "before")
NOT_FILTERS = ("page", "sort", *CURSORS)
KEY = "_keyset_{}"


@dataclass
class KeysetPage:
    """One page of rows and the cursors of its neighbours (None when there is none)."""

    object_list: list
    next_cursor: str | None
    previous_cursor: str | None

    def __iter__(self) -> Iterator:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    def __getitem__(self, index):
        return self.object_list[index]

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


def _terms(queryset: QuerySet) -> list[tuple[Any, bool]]:
    """(expression, descending) for each term of the queryset's ordering, the pk last."""
    terms: list[tuple[Any, bool]] = []
    for term in queryset.query.order_by:
        if isinstance(term, str):
            name = term.lstrip("-")
            terms.append((F(name), term.startswith("-")))
        elif isinstance(term, OrderBy):
            terms.append((term.expression, term.descending))
        else:
            terms.append((term, False))
    pk_names = {"pk", queryset.model._meta.pk.name, queryset.model._meta.pk.attname}
    if not any(isinstance(expression, F) and expression.name in pk_names for expression, _ in terms):
        terms.append((F("pk"), terms[-1][1] if terms else False))
    return terms


def _signature(terms: list[tuple[Any, bool]]) -> str:
    """A short fingerprint of the ordering: a cursor of another ordering is not used."""
    return hashlib.sha256(repr(terms).encode()).hexdigest()[:12]


def _encode_value(value: Any) -> list:
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, Decimal):
        return ["x", str(value)]
    return ["s", str(value)]


def _decode_value(item: list) -> Any:
    kind, *rest = item
    if kind == "n":
        return None
    (value,) = rest
    decoders = {
        "b": lambda v: v if isinstance(v, bool) else _bad(),
        "i": lambda v: v if isinstance(v, int) and not isinstance(v, bool) else _bad(),
        "t": lambda v: datetime.fromisoformat(v),
        "d": lambda v: date.fromisoformat(v),
        "x": lambda v: Decimal(v),
        "s": lambda v: v if isinstance(v, str) else _bad(),
    }
    return decoders[kind](value)


def _bad():
    raise ValueError("bad cursor value")


def encode_cursor(signature: str, values: list[Any]) -> str:
    data = json.dumps({"o": signature, "k": [_encode_value(value) for value in values]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode_cursor(text: str | None, signature: str, length: int) -> list[Any] | None:
    """The key values of a cursor, or None when it is missing, malformed or of another ordering
    (the list then starts from its first page: a bad cursor is never an error)."""
    if not text or len(text) > 4000:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if data["o"] != signature or len(data["k"]) != length:
            return None
        return [_decode_value(item) for item in data["k"]]
    except (ValueError, TypeError, KeyError, IndexError, InvalidOperation, binascii.Error, UnicodeDecodeError):
        return None


def _beyond(names: list[str], descending: list[bool], values: list[Any], forward: bool) -> Q:
    """Rows strictly after (``forward``) or before the row whose keys are ``values``, in the
    order (names, descending) with NULLs last: a lexicographic comparison spelt as OR of ANDs."""
    result = Q(pk__in=[])
    equal = Q()
    for name, desc, value in zip(names, descending, values, strict=True):
        if value is None:
            strict = None if forward else Q(**{f"{name}__isnull": False})
            same = Q(**{f"{name}__isnull": True})
        else:
            greater = forward != desc  # ascending and forward, or descending and backward
            strict = Q(**{f"{name}__{'gt' if greater else 'lt'}": value})
            if forward:
                strict |= Q(**{f"{name}__isnull": True})
            same = Q(**{name: value})
        if strict is not None:
            result |= equal & strict
        equal &= same
    return result


def _checked(keyed: QuerySet, names: list[str], values: list[Any] | None) -> list[Any] | None:
    """The cursor's values as their columns take them, or None if any does not fit its column
    (a hand-made cursor: the list starts from its first page rather than failing in the database)."""
    if values is None:
        return None
    checked = []
    try:
        for name, value in zip(names, values, strict=True):
            field = keyed.query.annotations[name].output_field
            if value is not None:
                value = field.to_python(value)
                field.run_validators(value)
            checked.append(value)
    except (ValidationError, ValueError, TypeError, AttributeError):
        return None
    return checked


def keyset_page(queryset: QuerySet, *, after: str | None, before: str | None, page_size: int) -> KeysetPage:
    """The page of ``queryset`` (already ordered) after or before a cursor, or its first page."""
    terms = _terms(queryset)
    signature = _signature(terms)
    names = [KEY.format(index) for index in range(len(terms))]
    descending = [desc for _, desc in terms]
    keyed = queryset.annotate(**{name: expression for name, (expression, _) in zip(names, terms, strict=True)})
    backward_values = decode_cursor(before, signature, len(terms)) if not after else None
    forward_values = decode_cursor(after, signature, len(terms))
    forward = backward_values is None
    values = _checked(keyed, names, forward_values if forward else backward_values)
    if values is None:
        forward = True
    else:
        keyed = keyed.filter(_beyond(names, descending, values, forward))
    order = [
        OrderBy(F(name), descending=desc, nulls_last=True)
        if forward
        else OrderBy(F(name), descending=not desc, nulls_first=True)
        for name, desc in zip(names, descending, strict=True)
    ]
    rows = list(keyed.order_by(*order)[: page_size + 1])
    more = len(rows) > page_size
    rows = rows[:page_size]
    if not forward:
        rows.reverse()

    def cursor(row) -> str:
        return encode_cursor(signature, [getattr(row, name) for name in names])

    has_next = more if forward else True
    has_previous = (values is not None) if forward else more
    return KeysetPage(
        object_list=rows,
        next_cursor=cursor(rows[-1]) if rows and has_next else None,
        previous_cursor=cursor(rows[0]) if rows and has_previous else None,
    )


def is_filtered(request: SignedInRequest) -> bool:
    return any(value for name, value in request.GET.items() if name not in NOT_FILTERS)


def filtered_page(
    request: SignedInRequest,
    filter_class,
    visible: QuerySet,
    *,
    default_order: tuple[str, ...],
    page_size: int = 25,
    rows: QuerySet | None = None,
) -> dict:
    """Context for a list page: ``page`` (a ``KeysetPage``), ``filter``, ``total`` (what the user
    could list, before filtering) and ``matching`` (after), both counted up to ``COUNT_LIMIT``,
    and ``filtered``. ``rows`` is what the filter set narrows (``visible`` with its joins and
    annotations) when it is not ``visible`` itself."""
    listing = filter_class(request.GET, queryset=visible if rows is None else rows)
    matching = listing.qs if listing.is_valid() else listing.queryset.none()
    if not request.GET.get("sort") or not matching.query.order_by:
        matching = matching.order_by(*default_order)
    page = keyset_page(
        matching, after=request.GET.get("after"), before=request.GET.get("before"), page_size=page_size
    )
    return {
        "page": page,
        "filter": listing,
        "total": count_up_to(visible),
        "matching": count_up_to(matching),
        "filtered": is_filtered(request),
    }
