"""The only code that reads the user-data store.

Every read happens inside ``audited_access()``, after its ledger entry: a subject lookup is
written here, before the read, in the caller's transaction; a query's ``query.requested`` is
committed at submission, before its run (``actions.query``). If the ledger cannot be written,
nothing is read. The test suite fails any test in which SQL reaches the store outside this
context.

Queries are structured, never free SQL: one catalogue category, a subset of the grant's
subjects and a sub-window of its window. ``read_rows`` builds its read from the catalogue
(on PostgreSQL one SQL text per category, ``read_statement``; elsewhere the ORM query,
``read_query``) and always applies the grant's own subject and window filters as well.

Result digest (documented encoding, version 2)::

    digest = SHA-256( canonical_json({"columns": [...], "rows": [[...], ...]}) )

canonical JSON is Custos's one encoding (``audit.canonical``: keys sorted, no whitespace,
``ensure_ascii=True``, ASCII bytes), the ledger's; cells are JSON values as stored (datetimes
ISO 8601 in UTC, decimals as strings). Anyone holding the stored rows can recompute it.
(Version 1, before 2026-12-03, did not escape non-ASCII characters: no release carried it.)
"""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import DateField, DateTimeField, DecimalField, Field, QuerySet
from django.db.models.constants import LOOKUP_SEP

import audit
from audit import canonical
from audit.events import Action
from userdata.catalogue import CATEGORIES, DataCategory, owner_column
from userdata.models import Account, Device, LoginEvent

from .models import DenialReason, Grant, GrantStatus, ProtectedSubject

_inside_gateway: contextvars.ContextVar[bool] = contextvars.ContextVar("custos_gateway", default=False)

USERDATA_ALIAS = "userdata"


def inside_gateway() -> bool:
    """True while the gateway is reading on behalf of an audited access (the test guard asks)."""
    return _inside_gateway.get()


@contextmanager
def audited_access() -> Iterator[None]:
    token = _inside_gateway.set(True)
    try:
        yield
    finally:
        _inside_gateway.reset(token)


@dataclass
class Resolution:
    """How the typed subject identifiers resolved to accounts of the user-data store.

    ``found`` entries are ``{"input": ..., "kind": ..., "accounts": [...]}``; ``too_broad``
    identifiers matched more than ``MAX_RESOLVED_PER_IDENTIFIER`` accounts (and resolve to
    none); ``linked`` maps a resolved account to the protected accounts it shares an email,
    phone or device with; ``employees`` are the resolved accounts marked as employees.
    """

    accounts: list[int] = field(default_factory=list)
    found: list[dict] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    too_broad: list[str] = field(default_factory=list)
    linked: dict[int, list[int]] = field(default_factory=dict)
    employees: list[int] = field(default_factory=list)


DIRECT_KINDS = ("account_id", "handle")
_PREFIXES = {"id:": "account_id", "handle:": "handle", "email:": "email", "phone:": "phone", "ip:": "ip"}
_PREFIXES["device:"] = "device"
_PHONE = re.compile(r"\+[0-9 ()\-]{6,30}")


def classify(identifier: str) -> tuple[str, str]:
    """(kind, normalised value) of one typed identifier.

    A prefix (``email:``, ``phone:``, ``ip:``, ``device:``, ``id:``, ``handle:``) says it
    outright; otherwise digits are an account id, an IP address parses as one, ``x@y`` is an
    email, ``+`` and digits a phone number, and anything else a handle (``@`` optional).
    """
    identifier = identifier.strip()
    for prefix, kind in _PREFIXES.items():
        if identifier.lower().startswith(prefix):
            return kind, _normalise(kind, identifier[len(prefix) :].strip())
    if identifier.isdigit():
        return "account_id", _normalise("account_id", identifier)
    try:
        return "ip", str(ipaddress.ip_address(identifier))
    except ValueError:
        pass
    if "@" in identifier[1:]:
        return "email", identifier
    if _PHONE.fullmatch(identifier):
        return "phone", _normalise("phone", identifier)
    return "handle", identifier.removeprefix("@")


def _normalise(kind: str, value: str) -> str:
    if kind == "account_id" and value.isdigit() and len(value) < 19:
        return str(int(value))
    if kind == "phone":
        return "+" + re.sub(r"[^0-9]", "", value)
    if kind == "handle":
        return value.removeprefix("@")
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    return value


def resolve_subjects(
    *,
    actor,
    identifiers: list[str],
    case_reference: str = "",
    window_start: date | None = None,
    window_end: date | None = None,
) -> Resolution:
    """Resolve typed identifiers to accounts, as an audited lookup.

    Account ids and handles name one account; an email, phone or device names the accounts
    that hold it; an IP address the accounts that logged in from it within the window (both
    dates inclusive; no window, no IP resolution). The lookup is recorded (who looked up
    what, on which case) before the store is read.
    """
    cleaned = [identifier.strip() for identifier in identifiers if identifier.strip()]
    audit.record(
        action=Action.SUBJECT_LOOKUP,
        actor=actor,
        case_reference=case_reference,
        details={"identifiers": cleaned},
    )
    classified = [(identifier, *classify(identifier)) for identifier in cleaned]
    resolution = Resolution()
    with audited_access():
        matches = _direct_matches(classified)
        for identifier, kind, value in classified:
            accounts = matches.get((kind, value.lower())) if kind in DIRECT_KINDS else None
            if kind not in DIRECT_KINDS:
                accounts = _indirect_matches(kind, value, window_start, window_end)
            _add(resolution, identifier, kind, accounts or [])
        resolution.linked = _linked_protected(resolution.accounts)
        resolution.employees = sorted(
            Account.objects.using(USERDATA_ALIAS)
            .filter(id__in=resolution.accounts, is_employee=True)
            .values_list("id", flat=True)
        )
    return resolution


def check_links(*, actor, accounts: list[int], case_reference: str = "") -> dict[int, list[int]]:
    """Which of ``accounts`` share an email, phone or device with a protected account now.

    Submission asks again (the registry may have grown since the draft was resolved); an
    audited lookup like ``resolve_subjects``.
    """
    audit.record(
        action=Action.SUBJECT_LOOKUP,
        actor=actor,
        case_reference=case_reference,
        details={"accounts": list(accounts), "purpose": "linked identifiers of protected subjects"},
    )
    with audited_access():
        return _linked_protected(list(accounts))


def _add(resolution: Resolution, identifier: str, kind: str, accounts: list[int]) -> None:
    if len(accounts) > settings.CUSTOS["MAX_RESOLVED_PER_IDENTIFIER"]:
        resolution.too_broad.append(identifier)
        return
    if not accounts:
        resolution.unknown.append(identifier)
        return
    resolution.found.append({"input": identifier, "kind": kind, "accounts": accounts})
    for account_id in accounts:
        if account_id not in resolution.accounts:
            resolution.accounts.append(account_id)


def _direct_matches(classified: list[tuple[str, str, str]]) -> dict[tuple[str, str], list[int]]:
    """Account ids and handles, two queries for all of them; keys are (kind, lower-cased value)."""
    accounts = Account.objects.using(USERDATA_ALIAS)
    ids = {int(value) for _, kind, value in classified if kind == "account_id" and value.isdigit() and len(value) < 19}
    typed = {value for _, kind, value in classified if kind == "handle"}
    handles = typed | {handle.lower() for handle in typed}  # as typed, and lower-cased
    matches = {("account_id", str(pk)): [pk] for pk in accounts.filter(id__in=ids).values_list("id", flat=True)}
    for handle, pk in accounts.filter(handle__in=handles).values_list("handle", "id"):
        matches[("handle", handle.lower())] = [pk]
    return matches


def _indirect_matches(kind: str, value: str, window_start: date | None, window_end: date | None) -> list[int]:
    """Accounts holding an email, phone or device, or seen at an IP in the window: at most cap + 1."""
    limit = settings.CUSTOS["MAX_RESOLVED_PER_IDENTIFIER"] + 1
    rows: QuerySet[Any, Any]
    if kind == "email":
        rows = Account.objects.using(USERDATA_ALIAS).filter(email__in={value, value.lower()}).values_list("id")
    elif kind == "phone":
        rows = Account.objects.using(USERDATA_ALIAS).filter(phone=value).values_list("id")
    elif kind == "device":
        rows = Device.objects.using(USERDATA_ALIAS).filter(device_id=value).values_list("account_id")
    elif kind == "ip" and window_start is not None and window_end is not None:
        rows = LoginEvent.objects.using(USERDATA_ALIAS).filter(
            ip=value,
            occurred_at__gte=_day_start(window_start),
            occurred_at__lt=_day_start(window_end) + timedelta(days=1),
        )
        rows = rows.values_list("account_id")
    else:
        return []
    return sorted(pk for (pk,) in rows.order_by().distinct()[:limit])


def _linked_protected(accounts: list[int]) -> dict[int, list[int]]:
    """Which resolved accounts share an email, phone or device with a protected account.

    The registry names accounts; a protected person's second account on the same phone or
    device is covered too. Empty emails and phones link nothing.
    """
    protected = set(ProtectedSubject.objects.in_force().values_list("account_id", flat=True))
    if not accounts or not protected:
        return {}
    both = set(accounts) | protected
    keys: dict[int, set[tuple[str, str]]] = {}
    for pk, email, phone in Account.objects.using(USERDATA_ALIAS).filter(id__in=both).values_list(
        "id", "email", "phone"
    ):
        keys.setdefault(pk, set()).update({("email", email.lower()), ("phone", phone)} - {("email", ""), ("phone", "")})
    for pk, device_id in Device.objects.using(USERDATA_ALIAS).filter(account_id__in=both).values_list(
        "account_id", "device_id"
    ):
        keys.setdefault(pk, set()).add(("device", device_id))
    holders: dict[tuple[str, str], set[int]] = {}
    for other in protected:
        for key in keys.get(other, ()):
            holders.setdefault(key, set()).add(other)
    linked = {}
    for account in accounts:
        shared = {other for key in keys.get(account, ()) for other in holders.get(key, ())} - {account}
        if shared:
            linked[account] = sorted(shared)
    return linked


# --- scoped queries ----------------------------------------------------------------------


@dataclass(frozen=True)
class QueryParameters:
    """What a grantee asks for: one category, some subjects, a window (dates, inclusive)."""

    category: str
    subjects: tuple[int, ...]
    window_start: date
    window_end: date


@dataclass(frozen=True)
class Extract:
    """Rows about to be returned; ``dropped_*`` are rows the tripwire withheld (see ``read_rows``)."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    dropped_rows: int = 0
    dropped_owners: tuple[int, ...] = ()
    # The account each returned row is about (parallel to ``rows``), for per-subject counts.
    owners: tuple[int, ...] = ()


def refusal(
    *, grant: Grant, user, parameters: QueryParameters, at: datetime, is_grantee: bool | None = None
) -> DenialReason | None:
    """Why ``user`` may not run ``parameters`` under ``grant`` at ``at`` (the DB clock), or None.

    Invariant 1 in one place: an active grantee, a grant neither revoked nor expired by the
    clock (whatever the expiry task did), an open case, and parameters inside the frozen scope.
    ``is_grantee`` is the grantee check when the caller read it with the grant (one statement
    instead of two); without it the check is its own query.
    """
    if is_grantee is None:
        is_grantee = grant.grantees.filter(pk=user.pk).exists()
    if not user.is_active or not is_grantee:
        return DenialReason.NOT_GRANTEE
    if grant.revoked_at is not None or grant.status == GrantStatus.REVOKED:
        return DenialReason.GRANT_REVOKED
    if not grant.case.is_open:
        return DenialReason.CASE_CLOSED
    if grant.status != GrantStatus.ACTIVE or not grant.starts_at <= at < grant.expires_at:
        return DenialReason.GRANT_EXPIRED
    if parameters.category not in grant.categories:
        return DenialReason.OUT_OF_SCOPE_CATEGORY
    if not parameters.subjects or set(parameters.subjects) - set(grant.subjects):
        return DenialReason.OUT_OF_SCOPE_SUBJECT
    if not grant.covers_window(parameters.window_start, parameters.window_end):
        return DenialReason.OUT_OF_SCOPE_WINDOW
    return None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, clock_time.min, tzinfo=UTC)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date | Decimal):
        return str(value)
    return value


def _scope(grant: Grant, parameters: QueryParameters) -> tuple[Any, date, date, list[int]]:
    """The category and what ``read_rows`` reads of it: the parameters' window and subjects
    within the grant's (a parameter that slipped past authorisation still cannot widen it)."""
    category = CATEGORIES[parameters.category]
    if category.name not in grant.categories:
        raise ValueError("category outside the grant")
    start = max(parameters.window_start, grant.window_start)
    end = min(parameters.window_end, grant.window_end)
    return category, start, end, sorted(set(parameters.subjects) & set(grant.subjects))


def read_query(*, grant: Grant, parameters: QueryParameters) -> tuple[Any, list[int]]:
    """The read of ``read_rows`` as an ORM query, built but not run, and the subjects it is
    limited to: the parameters' subjects and window within the grant's, the category's columns
    with the owner first, ordered by subject, time and pk, ``cap + 1`` rows. SQLite runs it;
    PostgreSQL runs the same read as ``read_statement`` (tests hold the two to the same rows)."""
    category, start, end, subjects = _scope(grant, parameters)
    cap = settings.CUSTOS["QUERY_ROW_CAP"]
    filters: dict[str, Any] = {f"{category.subject_field}__in": subjects}
    if category.windowed:
        filters[f"{category.time_field}__gte"] = _day_start(start)
        filters[f"{category.time_field}__lt"] = _day_start(end) + timedelta(days=1)
    query = (
        category.model.objects.using(USERDATA_ALIAS)
        .filter(**filters)
        .order_by(*[name for name in (category.subject_field, category.time_field, "pk") if name])
        .values_list(owner_column(category.model), *category.fields)[: cap + 1]
    )
    return query, subjects


# A datetime cell as ``_cell`` writes it (UTC, ISO 8601 with microseconds), written by PostgreSQL.
_ISO_UTC = """to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


@dataclass(frozen=True)
class _Statement:
    sql: str
    # Per returned column after the owner, what still turns its value into a cell (None: nothing).
    cells: tuple[Callable[[Any], Any] | None, ...]


def _cell_sql(model_field: Field) -> tuple[str, Callable[[Any], Any] | None]:
    """One catalogue column in the read's SELECT, and what still turns its value into a cell.

    Times and dates leave PostgreSQL as the text ``_cell`` makes of them (parsing them into
    Python objects to print them again was most of the read's Python time); decimals still
    go through ``_cell``; every other value is its own cell, as ``_cell`` leaves it."""
    column = f't."{model_field.column}"'
    if isinstance(model_field, DateTimeField):
        return _ISO_UTC.format(column=column), None
    if isinstance(model_field, DateField):
        return f"to_char({column}, 'YYYY-MM-DD')", None
    return column, _cell if isinstance(model_field, DecimalField) else None


def _own_column(model, name: str) -> Field | None:
    """The model's own column called ``name``, or None (a path through a relation, a reverse one)."""
    if LOOKUP_SEP in name:
        return None
    found = model._meta.get_field(name)
    return found if isinstance(found, Field) and found.column else None


@cache
def _statement(category: DataCategory) -> _Statement | None:
    """``read_query``'s SQL for ``category``, written once; None for a category whose filter or
    columns go through a relation (the ORM writes the joins) or need a converter."""
    model, database = category.model, connections[USERDATA_ALIAS]
    names = (owner_column(model), category.subject_field, category.time_field or model._meta.pk.name, *category.fields)
    owner, subject, time, *fields = [_own_column(model, name) for name in names]
    if owner is None or subject is None or time is None or None in fields:
        return None
    if any(column.get_db_converters(database) for column in fields if column):  # type: ignore[attr-defined]
        return None
    selected = [_cell_sql(column) for column in fields if column]
    where = f't."{subject.column}" = ANY(%s::{subject.db_type(database)}[])'
    order = [f't."{subject.column}"']
    if category.windowed:
        where += f' AND t."{time.column}" >= %s AND t."{time.column}" < %s'
        order.append(f't."{time.column}"')
    order.append(f't."{model._meta.pk.column}"')
    table = database.ops.quote_name(model._meta.db_table)
    cells = ", ".join(sql for sql, _ in selected)
    # Names from the catalogue and the models, never from input; the values are parameters.
    sql = (
        f'SELECT t."{owner.column}", {cells} FROM {table} t '  # noqa: S608
        f"WHERE {where} ORDER BY {', '.join(order)} LIMIT %s"
    )
    return _Statement(sql, tuple(cell for _, cell in selected))


def read_statement(*, grant: Grant, parameters: QueryParameters) -> tuple[str, list[Any], list[int]] | None:
    """``read_query``'s read as one SQL text per category, for PostgreSQL: the SQL, its parameters
    and the subjects it is limited to; the same rows in the same order, times and dates already
    the cells ``read_rows`` returns. None when the category is not plain columns of its model
    (``read_query`` reads it)."""
    category, start, end, subjects = _scope(grant, parameters)
    statement = _statement(category)
    if statement is None:
        return None
    params: list[Any] = [subjects]
    if category.windowed:
        params += [_day_start(start), _day_start(end) + timedelta(days=1)]
    params.append(settings.CUSTOS["QUERY_ROW_CAP"] + 1)
    return statement.sql, params, subjects


def _fetch(grant: Grant, parameters: QueryParameters) -> tuple[list[tuple], list[int]]:
    """The rows ``read_rows`` reads, owner first and then the cells, inside ``audited_access``."""
    database = connections[USERDATA_ALIAS]
    statement = _statement(CATEGORIES[parameters.category]) if database.vendor == "postgresql" else None
    if statement is None:
        query, subjects = read_query(grant=grant, parameters=parameters)
        with audited_access():
            return [(row[0], *(_cell(value) for value in row[1:])) for row in query], subjects
    sql, params, subjects = read_statement(grant=grant, parameters=parameters)  # type: ignore[misc]
    with audited_access(), database.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    if any(statement.cells):
        cells = statement.cells
        found = [
            (row[0], *(value if cell is None else cell(value) for cell, value in zip(cells, row[1:], strict=True)))
            for row in found
        ]
    return found, subjects


def read_rows(*, grant: Grant, parameters: QueryParameters) -> Extract:
    """Read one category for some subjects over a window, capped at ``QUERY_ROW_CAP`` rows.

    The caller has committed ``query.requested``. The grant's subjects and window are applied
    here as well as the parameters', so a parameter that slipped past authorisation still
    cannot widen the read.

    Tripwire: each row's owner (``owner_column``, not the catalogue's filter) is checked
    against the subjects asked for; rows about anyone else (a catalogue mistake, resolution
    drift) are dropped and counted in ``dropped_rows`` / ``dropped_owners`` for the caller to
    record as ``query.tripwire``. The rest is returned.
    """
    category = CATEGORIES[parameters.category]
    cap = settings.CUSTOS["QUERY_ROW_CAP"]
    found, subjects = _fetch(grant, parameters)
    allowed = set(subjects)
    kept = [row for row in found if row[0] in allowed]
    outside = [row[0] for row in found if row[0] not in allowed]
    rows = [list(row[1:]) for row in kept[:cap]]
    return Extract(
        columns=list(category.fields),
        rows=rows,
        owners=tuple(row[0] for row in kept[:cap]),
        truncated=len(found) > cap,
        dropped_rows=len(outside),
        dropped_owners=tuple(sorted(set(outside))),
    )


def canonical_result(columns: list[str], rows: list[list[Any]]) -> bytes:
    return canonical.encode({"columns": list(columns), "rows": [list(row) for row in rows]})


def result_digest(columns: list[str], rows: list[list[Any]]) -> str:
    """SHA-256 of the canonical encoding above, as 64 hex digits."""
    return hashlib.sha256(canonical_result(columns, rows)).hexdigest()
