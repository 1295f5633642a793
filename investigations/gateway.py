"""The only code that reads the user-data store.

Every read happens inside ``audited_access()``, after its ledger entry is written by the
caller (the subject lookup here, ``query.started`` in ``actions.query``): if the ledger cannot
be written, nothing is read. The test suite fails any test in which SQL reaches the store
outside this context.

Queries are structured, never free SQL: one catalogue category, a subset of the grant's
subjects and a sub-window of its window. ``read_rows`` builds the ORM query from the
catalogue and always applies the grant's own subject and window filters as well.

Result digest (documented encoding, version 1)::

    digest = SHA-256( canonical_json({"columns": [...], "rows": [[...], ...]}) )

canonical JSON is ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
encoded as UTF-8; cells are JSON values as stored (datetimes ISO 8601 in UTC, decimals as
strings). Anyone holding the stored rows can recompute it.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import Any

from django.conf import settings

import audit
from audit.actions import Action
from userdata.catalogue import CATEGORIES
from userdata.models import Account

from .models import CaseStatus, DenialReason, Grant, GrantStatus

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
    """How the typed subject identifiers resolved to accounts of the user-data store."""

    accounts: list[int] = field(default_factory=list)
    found: list[dict] = field(default_factory=list)  # {"input": ..., "kind": ..., "accounts": [...]}
    unknown: list[str] = field(default_factory=list)


def _classify(identifier: str) -> str:
    return "account_id" if identifier.isdigit() else "handle"


def resolve_subjects(*, actor, identifiers: list[str], case_reference: str = "") -> Resolution:
    """Resolve account ids and handles to accounts, as an audited lookup.

    The lookup is recorded (who looked up what, on which case) before the store is read.
    """
    cleaned = [identifier.strip().removeprefix("@") for identifier in identifiers if identifier.strip()]
    audit.record(
        action=Action.SUBJECT_LOOKUP,
        actor=actor,
        case_reference=case_reference,
        details={"identifiers": cleaned},
    )
    ids = {int(identifier) for identifier in cleaned if _classify(identifier) == "account_id" and len(identifier) < 19}
    typed = {identifier for identifier in cleaned if _classify(identifier) == "handle"}
    handles = typed | {handle.lower() for handle in typed}  # as typed, and lower-cased
    with audited_access():
        accounts = Account.objects.using(USERDATA_ALIAS)
        by_id = set(accounts.filter(id__in=ids).values_list("id", flat=True))
        by_handle = {
            handle.lower(): account_id
            for handle, account_id in accounts.filter(handle__in=handles).values_list("handle", "id")
        }
    resolution = Resolution()
    for identifier in cleaned:
        kind = _classify(identifier)
        if kind == "account_id" and len(identifier) < 19 and int(identifier) in by_id:
            account_ids = [int(identifier)]
        elif kind == "handle" and identifier.lower() in by_handle:
            account_ids = [by_handle[identifier.lower()]]
        else:
            resolution.unknown.append(identifier)
            continue
        resolution.found.append({"input": identifier, "kind": kind, "accounts": account_ids})
        for account_id in account_ids:
            if account_id not in resolution.accounts:
                resolution.accounts.append(account_id)
    return resolution


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
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


def refusal(*, grant: Grant, user, parameters: QueryParameters, at: datetime) -> DenialReason | None:
    """Why ``user`` may not run ``parameters`` under ``grant`` at ``at`` (the DB clock), or None.

    Invariant 1 in one place: an active grantee, a grant neither revoked nor expired by the
    clock (whatever the expiry task did), an open case, and parameters inside the frozen scope.
    """
    if not user.is_active or not grant.grantees.filter(pk=user.pk).exists():
        return DenialReason.NOT_GRANTEE
    if grant.revoked_at is not None or grant.status == GrantStatus.REVOKED:
        return DenialReason.GRANT_REVOKED
    if grant.case.status != CaseStatus.OPEN:
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


def _test_delay() -> None:
    """Test-only: ``CUSTOS_TEST_QUERY_DELAY`` seconds of sleep before reading (default 0).

    Lets the crash test kill a worker deterministically while a query runs; never set it in
    production.
    """
    seconds = float(os.environ.get("CUSTOS_TEST_QUERY_DELAY", "0") or 0)
    if seconds > 0:
        time.sleep(seconds)


def read_rows(*, grant: Grant, parameters: QueryParameters) -> Extract:
    """Read one category for some subjects over a window, capped at ``QUERY_ROW_CAP`` rows.

    The caller has recorded ``query.started``. The grant's subjects and window are applied
    here as well as the parameters', so a parameter that slipped past authorisation still
    cannot widen the read.
    """
    category = CATEGORIES[parameters.category]
    if category.name not in grant.categories:
        raise ValueError("category outside the grant")
    cap = settings.CUSTOS["QUERY_ROW_CAP"]
    start = max(parameters.window_start, grant.window_start)
    end = min(parameters.window_end, grant.window_end)
    filters = {
        f"{category.subject_field}__in": sorted(set(parameters.subjects) & set(grant.subjects)),
        f"{category.time_field}__gte": _day_start(start),
        f"{category.time_field}__lt": _day_start(end) + timedelta(days=1),
    }
    _test_delay()
    with audited_access():
        found = list(
            category.model.objects.using(USERDATA_ALIAS)
            .filter(**filters)
            .order_by(category.subject_field, category.time_field, "pk")
            .values_list(*category.fields)[: cap + 1]
        )
    rows = [[_cell(value) for value in row] for row in found[:cap]]
    return Extract(columns=list(category.fields), rows=rows, truncated=len(found) > cap)


def canonical_result(columns: list[str], rows: list[list[Any]]) -> bytes:
    return json.dumps(
        {"columns": list(columns), "rows": [list(row) for row in rows]},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def result_digest(columns: list[str], rows: list[list[Any]]) -> str:
    """SHA-256 of the canonical encoding above, as 64 hex digits."""
    return hashlib.sha256(canonical_result(columns, rows)).hexdigest()
