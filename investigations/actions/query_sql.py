"""The gateway's fused statements on PostgreSQL (the ORM cannot write a data-modifying CTE).

A query costs two commits and at most ten statements, BEGIN and COMMIT included, whatever
its row count (``tests/investigations/test_query_statements.py``); on PostgreSQL eight, the
savings here; everywhere else, and on SQLite (no data-modifying CTEs), the same steps are
ORM calls and ``audit.record``.

- ``insert_checked``: the INSERT of the attempt, its ``query.requested`` event
  (``audit.ledger.record_statement``) and a fresh read of everything about the grant that can
  change after it is issued (status, revocation, times, the case's status, whether the actor
  is still a grantee) with the database clock, in one statement. The scope is frozen, so the
  caller's copy of it is current by construction. The event goes in before the refusal is
  decided (in Python, ``gateway.refusal``): a refused attempt is rolled back and submitted
  again without it.
- ``claim``: the run's lock on a waiting query with everything its re-check needs (the grant,
  its case's status, the user's ``is_active``, whether the user is still a grantee, the
  database clock), in one statement written once, its rows made into models without the
  ORM's query building (about 1.4 ms of Python per run for the same SELECT).
- ``complete``: the completion UPDATE, the INSERT of the stored result and the
  ``query.completed`` event (``audit.ledger.record_statement``: the ledger's own INSERT), in
  one statement; it writes nothing when the query is no longer waiting (another run completed it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Model
from django.db.models.sql import InsertQuery

from accounts.models import User
from audit import ledger

from ..models import Case, DataQuery, Grant, QueryResult, QueryStatus

WAITING = (QueryStatus.QUEUED, QueryStatus.RUNNING)  # RUNNING: rows left by runs of older releases


def fused() -> bool:
    return connection.vendor == "postgresql"


def _insert_sql(query: DataQuery) -> tuple[str, list]:
    """Django's own INSERT for ``query`` (field preparation, ``auto_now_add``), as SQL and params."""
    fields = [field for field in DataQuery._meta.local_concrete_fields if not field.primary_key]
    insert = InsertQuery(DataQuery)
    insert.insert_values(fields, [query])
    [(sql, params)] = insert.get_compiler(connection=connection).as_sql()
    return sql, list(params)


_CHECK = """
WITH inserted AS ({insert} RETURNING "id"), recorded AS (
{recorded}
)
SELECT inserted.id, g.status, g.revoked_at, g.starts_at, g.expires_at,
       EXISTS (SELECT 1 FROM {grantees} m WHERE m.grant_id = g.id AND m.user_id = %s),
       statement_timestamp(), (SELECT count(*) FROM recorded), {case_columns}
  FROM inserted CROSS JOIN {grant} g
 CROSS JOIN LATERAL (SELECT * FROM {case} WHERE id = g.case_id LIMIT 1) c
 WHERE g.id = %s
"""
_GRANT_STATE = ("status", "revoked_at", "starts_at", "expires_at")


def insert_checked(query: DataQuery, grant: Grant, actor, *, requested: dict[str, Any]) -> tuple[bool, datetime]:
    """Save ``query`` and record ``requested`` (``audit.record``'s keyword arguments, the target
    ``query`` itself; written by ``audit.ledger.record_statement``); refresh ``grant``'s mutable
    state and its case. Returns (actor is a grantee, DB clock).

    The event is written before the refusal is decided: a caller that refuses the attempt must
    roll the statement back (``actions.query.query_submit`` does), leaving no trace of either."""
    insert, params = _insert_sql(query)
    recorded, event_params = ledger.record_statement(source="inserted", target_key="id", **requested)
    case_fields = [field.attname for field in Case._meta.concrete_fields]
    sql = _CHECK.format(
        insert=insert,
        recorded=recorded,
        grantees=Grant.grantees.through._meta.db_table,
        grant=Grant._meta.db_table,
        case=Case._meta.db_table,
        case_columns=", ".join(f'c."{Case._meta.get_field(name).column}"' for name in case_fields),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *event_params, actor.pk, grant.pk])
        row = cursor.fetchone()
    if row is None or row[7] != 1:  # the grant exists (a foreign key), so both are one row: must not pass
        raise RuntimeError(f"query {query.pk}: the attempt was not saved with exactly one ledger event")
    query.pk = row[0]
    query._state.adding, query._state.db = False, connection.alias
    for name, value in zip(_GRANT_STATE, row[1:5], strict=True):
        setattr(grant, name, value)
    grant.case = Case.from_db(connection.alias, case_fields, row[8:])  # text, dates: no conversion
    return bool(row[5]), row[6]


_COMPLETE = """
WITH done AS (
    UPDATE {query} SET status = %s, row_count = %s, rows_by_subject = %s, truncated = %s, digest = %s,
                       attempts = attempts + 1, started_at = %s, finished_at = statement_timestamp()
     WHERE id = %s AND status = ANY(%s)
 RETURNING id, finished_at
), stored AS (
    INSERT INTO {result} (query_id, columns, rows, stored_at)
    SELECT id, %s, %s, finished_at FROM done
    RETURNING stored_at
), recorded AS (
{recorded}
)
SELECT stored.stored_at, (SELECT count(*) FROM recorded) FROM stored
"""


def _json(model, name: str, value):
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def complete(
    query: DataQuery, *, columns: list, rows: list, started_at: datetime, event: dict[str, Any]
) -> datetime | None:
    """Mark ``query`` succeeded, store its rows and record ``event`` (``audit.record``'s keyword
    arguments, written by ``audit.ledger.record_statement``), in one statement; returns when, or
    None if the query was not waiting (then nothing is written: all three hang on the UPDATE)."""
    recorded, event_params = ledger.record_statement(source="done", **event)
    params = [
        QueryStatus.SUCCEEDED,
        query.row_count,
        _json(DataQuery, "rows_by_subject", query.rows_by_subject),
        query.truncated,
        query.digest,
        started_at,
        query.pk,
        [str(status) for status in WAITING],
        _json(QueryResult, "columns", columns),
        _json(QueryResult, "rows", rows),
        *event_params,
    ]
    sql = _COMPLETE.format(query=DataQuery._meta.db_table, result=QueryResult._meta.db_table, recorded=recorded)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if row[1] != 1:  # the UPDATE and the INSERTs hang on one row: this cannot happen, and must not pass
        raise RuntimeError(f"query {query.pk}: completion stored without exactly one ledger event ({row[1]})")
    return row[0]


class _Columns:
    """Some of a model's columns in a hand-written SELECT (``alias."column"``), and the model
    instance of them: ``from_db`` with the values as the ORM would convert them (JSON decoded);
    the fields left out are deferred, loaded on first use like ``only()``'s."""

    def __init__(self, model: type[Model], alias: str, names: Sequence[str] | None = None) -> None:
        fields = [field for field in model._meta.concrete_fields if names is None or field.attname in names]
        self.model, self.names, self.count = model, [field.attname for field in fields], len(fields)
        self.sql = ", ".join(f'{alias}."{field.column}"' for field in fields)
        self.converters = [
            (index, converter, field.get_col(alias))
            for index, field in enumerate(fields)
            for converter in field.get_db_converters(connection)
        ]

    def build(self, values: Sequence[Any]) -> Any:
        values = list(values)
        for index, converter, column in self.converters:
            values[index] = converter(values[index], column, connection)
        return self.model.from_db(connection.alias, self.names, values)


_CLAIM = """
SELECT {columns},
       EXISTS (SELECT 1 FROM {grantees} m WHERE m.grant_id = q.grant_id AND m.user_id = q.user_id),
       statement_timestamp()
  FROM {query} q
 CROSS JOIN LATERAL (SELECT * FROM {grant} WHERE id = q.grant_id LIMIT 1) g
 CROSS JOIN LATERAL (SELECT * FROM {case} WHERE id = g.case_id LIMIT 1) c
 CROSS JOIN LATERAL (SELECT * FROM {user} WHERE id = q.user_id LIMIT 1) u
 WHERE q.id = %s AND q.status = ANY(%s)
   FOR NO KEY UPDATE OF q SKIP LOCKED
"""


@cache
def _claim_shape() -> tuple[str, tuple[_Columns, ...]]:
    """The claim's SQL and its column groups, built once: query and grant whole (the run returns
    the query, and the grant's scope is what the re-check and the read test), the case's status
    and reference, the user's ``is_active`` and username (for the ledger)."""
    parts = (
        _Columns(DataQuery, "q"),
        _Columns(Grant, "g"),
        _Columns(Case, "c", ("id", "reference", "status")),
        _Columns(User, "u", ("id", "username", "is_active")),
    )
    sql = _CLAIM.format(
        columns=",\n       ".join(part.sql for part in parts),
        grantees=Grant.grantees.through._meta.db_table,
        query=DataQuery._meta.db_table,
        grant=Grant._meta.db_table,
        case=Case._meta.db_table,
        user=User._meta.db_table,
    )
    return sql, parts


def claim(query_id: int) -> DataQuery | None:
    """Lock a waiting query for this run (``FOR NO KEY UPDATE`` of the query's row only,
    ``SKIP LOCKED``), with its grant, case and user as they are now, and set ``is_grantee``
    (the user is on the grant's grantees now) and ``clock`` (the database clock) on it.
    None when the query is not waiting or another run holds it."""
    sql, parts = _claim_shape()
    with connection.cursor() as cursor:
        cursor.execute(sql, [query_id, [str(status) for status in WAITING]])
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for part in parts:
        instances.append(part.build(row[start : start + part.count]))
        start += part.count
    query, grant, case, user = instances
    grant.case, query.grant, query.user = case, grant, user
    query.is_grantee, query.clock = bool(row[start]), row[start + 1]
    return query
