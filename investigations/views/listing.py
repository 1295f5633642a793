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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
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


def _beyond(names: list[str], descending: list[bool], values: list[Any], forward: bool, nullable: list[bool]) -> Q:
    """Rows strictly after (``forward``) or before the row whose keys are ``values``, in the
    order (names, descending) with NULLs last: a lexicographic comparison spelt as OR of ANDs.

    When the first key cannot be NULL, the comparison also bounds it on its own (``<=`` or
    ``>=``), so that an index on the keys starts at the cursor instead of at the list's top."""
    result = Q(pk__in=[])
    equal = Q()
    for name, desc, value, may_be_null in zip(names, descending, values, nullable, strict=True):
        greater = forward != desc  # ascending and forward, or descending and backward
        if value is None:
            strict = None if forward else Q(**{f"{name}__isnull": False})
            same = Q(**{f"{name}__isnull": True})
        else:
            strict = Q(**{f"{name}__{'gt' if greater else 'lt'}": value})
            if forward and may_be_null:
                strict |= Q(**{f"{name}__isnull": True})
            same = Q(**{name: value})
        if strict is not None:
            result |= equal & strict
        equal &= same
    if values and values[0] is not None and not nullable[0]:
        result &= Q(**{f"{names[0]}__{'gte' if forward != descending[0] else 'lte'}": values[0]})
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


def _nullable(queryset: QuerySet, expression: Any) -> bool:
    """Whether a sort term may be NULL: only a column of the model itself declared NOT NULL is not."""
    if not isinstance(expression, F) or "__" in expression.name:
        return True
    try:
        field = queryset.model._meta.get_field("id" if expression.name == "pk" else expression.name)
    except FieldDoesNotExist:
        return True
    return bool(getattr(field, "null", True))


def _nulls(forward: bool, may_be_null: bool) -> dict[str, bool]:
    """NULLs last going forward, first going back; nothing said for a NOT NULL column, so that a
    plain index on it (``case_newest_first``) serves the order in both databases."""
    if not may_be_null:
        return {}
    return {"nulls_last": True} if forward else {"nulls_first": True}


class BadCursor(ValueError):
    """A cursor that is not one this list gave out (only raised where ``strict``: the API)."""


def _narrow(keyed: QuerySet) -> QuerySet:
    """The rows to sort, without what only the page's rows need: joins for display
    (``select_related``) and prefetches are left to ``fetch``."""
    return keyed.select_related(None).prefetch_related(None)


def keyset_page(
    queryset: QuerySet,
    *,
    after: str | None,
    before: str | None,
    page_size: int,
    fetch: Callable[[QuerySet], QuerySet] | None = None,
    strict: bool = False,
) -> KeysetPage:
    """The page of ``queryset`` (already ordered) after or before a cursor, or its first page.

    Two statements whatever the rows behind the page: the first sorts only the key columns and
    the primary key (no display joins) and stops after ``page_size + 1`` rows; the second reads
    those rows by primary key through ``fetch`` (the page's joins, prefetches and annotations,
    from the model's manager: the ids came from ``queryset``, so visibility was applied there).
    Without ``fetch`` the rows come from ``queryset`` itself. A bad cursor starts from the first
    page, or with ``strict`` raises ``BadCursor``.
    """
    terms = _terms(queryset)
    signature = _signature(terms)
    names = [KEY.format(index) for index in range(len(terms))]
    descending = [desc for _, desc in terms]
    keyed = queryset.annotate(**{name: expression for name, (expression, _) in zip(names, terms, strict=True)})
    given = before if not after else None
    backward_values = decode_cursor(given, signature, len(terms))
    forward_values = decode_cursor(after, signature, len(terms))
    forward = backward_values is None
    values = _checked(keyed, names, forward_values if forward else backward_values)
    if strict and (after or given) and values is None:
        raise BadCursor("after" if after else "before")
    nullable = [_nullable(queryset, expression) for expression, _ in terms]
    if values is None:
        forward = True
    else:
        keyed = keyed.filter(_beyond(names, descending, values, forward, nullable))
    order = [
        OrderBy(F(name), descending=desc if forward else not desc, **_nulls(forward, may_be_null))
        for name, desc, may_be_null in zip(names, descending, nullable, strict=True)
    ]
    keys = list(_narrow(keyed).order_by(*order).values_list("pk", *names)[: page_size + 1])
    more = len(keys) > page_size
    keys = keys[:page_size]
    if not forward:
        keys.reverse()
    ids = [key[0] for key in keys]
    source = fetch(queryset.model._default_manager.all()) if fetch is not None else queryset
    by_id = {row.pk: row for row in source.filter(pk__in=ids).order_by()} if ids else {}
    rows = [by_id[pk] for pk in ids if pk in by_id]

    def cursor(key: tuple) -> str:
        return encode_cursor(signature, list(key[1:]))

    has_next = more if forward else True
    has_previous = (values is not None) if forward else more
    return KeysetPage(
        object_list=rows,
        next_cursor=cursor(keys[-1]) if keys and has_next else None,
        previous_cursor=cursor(keys[0]) if keys and has_previous else None,
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
    fetch: Callable[[QuerySet], QuerySet] | None = None,
    counted: QuerySet | None = None,
) -> dict:
    """Context for a list page: ``page`` (a ``KeysetPage``), ``filter``, ``total`` (what the user
    could list, before filtering) and ``matching`` (after), both counted up to ``COUNT_LIMIT``,
    and ``filtered``. ``rows`` is what the filter set narrows (``visible`` with the joins and
    annotations its filters and sorting use) when it is not ``visible`` itself; ``fetch`` adds
    what the page shows (see ``keyset_page``); ``counted`` is ``visible`` in the shape that counts
    it fastest (``access.Listing``) when that is another. Unfiltered, ``matching`` is ``total``:
    one count."""
    listing = filter_class(request.GET, queryset=visible if rows is None else rows, request=request)
    matching = listing.qs if listing.is_valid() else listing.queryset.none()
    if not request.GET.get("sort") or not matching.query.order_by:
        matching = matching.order_by(*default_order)
    page = keyset_page(
        matching,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        page_size=page_size,
        fetch=fetch,
    )
    filtered = is_filtered(request)
    total = count_up_to(visible if counted is None else counted)
    # A filter set that narrows by default (the alert list shows open alerts) counts apart.
    unnarrowed = not filtered and not getattr(filter_class, "narrows_by_default", False)
    return {
        "page": page,
        "filter": listing,
        "total": total,
        "matching": total if unnarrowed else count_up_to(matching),
        "filtered": filtered,
    }
