"""The ledger's monthly partitions (PostgreSQL): the layout, the partitions made ahead, their names.

``audit_auditevent`` is partitioned by RANGE (``occurred_at``), one partition per calendar
month in UTC (``audit_auditevent_YYYY_MM``), plus a DEFAULT partition
(``audit_auditevent_default``) that takes any row no month partition covers, so an insert
never fails for want of a partition. PostgreSQL needs the partition key in every unique
index, so the primary key in the database is (``seq``, ``occurred_at``); ``seq`` alone stays
the model's primary key (numbers come from one sequence, so they stay unique).

Partitions are made ahead by :func:`ensure` (the beat task ``audit.tasks.create_audit_partitions``,
daily) through the function ``audit_create_partitions(months_ahead)``. It is SECURITY DEFINER,
owned by the table owner, and the only thing the runtime role may do to the layout: create the
partitions of the current month and the next ``months_ahead`` months that are missing (at most
24), each with the append-only TRUNCATE trigger (row triggers are cloned from the parent by
PostgreSQL itself). The runtime role cannot create, attach, detach or drop a partition
otherwise, has no privilege on the partitions themselves (it reaches rows through the parent
only), and cannot change the function. A month whose rows already went to the DEFAULT
partition is skipped with a warning (PostgreSQL refuses such a partition); its rows stay
where they are, in the table, in the chain.

Every partition is made with ``fillfactor`` :data:`FILLFACTOR` (migration ``audit.0020``
set it on those made before): inserts fill a heap page only that far, and the rest stays free
for the seal. The sealer's UPDATE writes a second version of each row (the chain columns filled,
about 130 bytes longer) while the first is still there (it goes only once the seal commits), so
a page whose events are sealed in one batch needs room for both versions of every row on it.
With that room the seal is a HOT update: the new version on the same page, no index entry.
Without it (full pages) nearly every seal moved its row to another page and wrote an entry in
each of the table's six indexes. The cost is space: a heap page of the ledger holds 40% of
what a full one would (docs/audit.md, "Room for the seal").

Old months leave the database through ``manage.py audit_archive`` (``audit.archive``).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from django.db import connection

logger = logging.getLogger(__name__)

TABLE = "audit_auditevent"
DEFAULT_PARTITION = f"{TABLE}_default"
MONTHS_AHEAD = 2
FUNCTION = "audit_create_partitions"
# Percent of a heap page that inserts fill (module docstring). 40 leaves room for both
# versions of every row of events of about 210 bytes or more; on pages of smaller events the
# last seals are ordinary updates (docs/audit.md). PostgreSQL refuses storage parameters on the partitioned parent,
# so each partition carries its own.
FILLFACTOR = 40

# Creating a partition locks the parent: never stall writers behind a long reader for more than this.
_LOCK_TIMEOUT = "2s"

CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}(months_ahead integer) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = __SCHEMA__, pg_temp AS $$
DECLARE
    first_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    month date;
    name text;
    low text;
    high text;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 24';
    END IF;
    PERFORM set_config('lock_timeout', '{_LOCK_TIMEOUT}', true);
    FOR step IN 0..months_ahead LOOP
        month := (first_month + make_interval(months => step))::date;
        name := '{TABLE}_' || to_char(month, 'YYYY_MM');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        low := to_char(month, 'YYYY-MM-DD') || ' 00:00:00+00';
        high := to_char((month + interval '1 month')::date, 'YYYY-MM-DD') || ' 00:00:00+00';
        IF EXISTS (SELECT 1 FROM {DEFAULT_PARTITION}
                    WHERE occurred_at >= low::timestamptz AND occurred_at < high::timestamptz) THEN
            RAISE WARNING 'audit partition % not created: the default partition holds rows of that month', name;
            CONTINUE;
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF {TABLE} FOR VALUES FROM (%L) TO (%L)__STORAGE__', name, low, high);
        EXECUTE format('CREATE TRIGGER audit_auditevent_no_truncate BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', name);
        RETURN NEXT name;
    END LOOP;
END
$$
"""  # noqa: S608 (constants only)


def storage(fillfactor: int | None = FILLFACTOR) -> str:
    """The storage clause of a new partition (empty for PostgreSQL's default, a full page)."""
    return f" WITH (fillfactor = {int(fillfactor)})" if fillfactor else ""


def install_function(cursor, *, fillfactor: int | None = FILLFACTOR) -> None:
    """Create (or replace) ``audit_create_partitions`` in the current schema, EXECUTE for nobody
    but the owner until ``setup_db_roles`` grants it to the runtime role (a replaced function
    keeps its owner and the grants made on it). The partitions it makes get ``fillfactor``.

    Its search_path is that schema, then ``pg_temp`` explicitly last: PostgreSQL otherwise
    searches a caller's temporary schema first for relations, so a runtime session could hand
    the owner's function its own temporary ``audit_auditevent`` or ``audit_auditevent_default``
    (the advice of PostgreSQL's documentation for SECURITY DEFINER functions).
    """
    cursor.execute("SELECT current_schema()")
    schema = cursor.fetchone()[0]
    cursor.execute(
        CREATE_FUNCTION.replace("__SCHEMA__", connection.ops.quote_name(schema)).replace(
            "__STORAGE__", storage(fillfactor)
        )
    )
    cursor.execute(f"REVOKE ALL ON FUNCTION {FUNCTION}(integer) FROM PUBLIC")


def partition_name(month: date) -> str:
    return f"{TABLE}_{month.year:04d}_{month.month:02d}"


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The first instant of the month and of the next, in UTC (the partition's bounds)."""
    high = add_months(month, 1)
    return datetime(month.year, month.month, 1, tzinfo=UTC), datetime(high.year, high.month, 1, tzinfo=UTC)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def current_month(now: datetime | None = None) -> date:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return date(moment.year, moment.month, 1)


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(  # the schema's table, never a session's temporary one of the same name
            "SELECT relkind FROM pg_class WHERE relname = %s AND relnamespace = current_schema()::regnamespace",
            [TABLE],
        )
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def attached() -> list[str]:
    """The partitions attached now, by name (the DEFAULT partition included)."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = %s::regclass ORDER BY child.relname",
            [TABLE],
        )
        return [row[0] for row in cursor.fetchall()]


def ensure(months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the missing partitions of this month and the next ``months_ahead``; returns those made.

    Safe to run at any time and as the runtime role; a no-op on SQLite.
    """
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {FUNCTION}(%s)", [months_ahead])
        made = [row[0] for row in cursor.fetchall()]
    if made:
        logger.info("audit partitions created: %s", ", ".join(made))
    return made


def create_month(month: date) -> str:
    """As the table owner: create one month's partition (any month; the migration, tests, repairs),
    with the same ``fillfactor`` as the function gives."""
    name = partition_name(month)
    low, high = month_bounds(month)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return name
        cursor.execute(
            f"CREATE TABLE {quote(name)} PARTITION OF {TABLE} "
            f"FOR VALUES FROM ('{low:%Y-%m-%d} 00:00:00+00') TO ('{high:%Y-%m-%d} 00:00:00+00')" + storage()
        )
        cursor.execute(
            f"CREATE TRIGGER audit_auditevent_no_truncate BEFORE TRUNCATE ON {quote(name)} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
    return name
