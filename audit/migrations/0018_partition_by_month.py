"""PostgreSQL: the audit table becomes partitioned by month (``audit.partitions``); SQLite: nothing.

Forwards, under an ACCESS EXCLUSIVE lock: the table is renamed aside, a table partitioned by
RANGE (``occurred_at``) is made with the same columns and defaults (``seq`` still drawn from
``audit_auditevent_seq``, which it now owns), primary key (``seq``, ``occurred_at``) and the same
indexes under the same names; one partition per month from the oldest event's to two months
ahead, and a DEFAULT partition; the rows are copied, the old table dropped. The append-only
triggers are installed on the new table (PostgreSQL clones the row triggers to every
partition; the TRUNCATE trigger is put on each partition too), the partition-making function
is created (EXECUTE revoked from PUBLIC: ``setup_db_roles`` grants it to the runtime role), and
the privileges other roles held on the table are granted again on the new one, table and
column grants alike (run ``setup_db_roles`` after ``migrate`` anyway, as always).

Backwards does the same the other way: one plain table with primary key (``seq``), the rows of
every attached partition copied into it. Months already archived and detached
(``audit_archive``) are not brought back: they live in their exports.
"""

from datetime import date

from django.db import migrations

from audit import partitions, triggers

TABLE = partitions.TABLE
OLD = f"{TABLE}_unpartitioned"
SEQUENCE = "audit_auditevent_seq"


def _months(first: date, last: date) -> list[date]:
    months, month = [], date(first.year, first.month, 1)
    while month <= last:
        months.append(month)
        month = partitions.add_months(month, 1)
    return months


def _grants(cursor, table: str) -> list[str]:
    """GRANT statements re-creating what roles other than the owner hold on ``table``."""
    cursor.execute(
        "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
        "WHERE table_schema = current_schema() AND table_name = %s "
        "AND grantee <> (SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s)",
        [table, table],
    )
    statements = [f'GRANT {privilege} ON {TABLE} TO "{grantee}"' for grantee, privilege in cursor.fetchall()]
    cursor.execute(
        "SELECT grantee, privilege_type, column_name FROM information_schema.column_privileges "
        "WHERE table_schema = current_schema() AND table_name = %s "
        "AND grantee <> (SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s) "
        "AND (grantee, privilege_type) NOT IN (SELECT grantee, privilege_type FROM information_schema.role_table_grants "
        "  WHERE table_schema = current_schema() AND table_name = %s)",
        [table, table, table],
    )
    statements += [
        f'GRANT {privilege} ("{column}") ON {TABLE} TO "{grantee}"' for grantee, privilege, column in cursor.fetchall()
    ]
    return statements


def _set_aside(cursor) -> tuple[list[str], list[str]]:
    """Rename the current table aside; returns its secondary index definitions and its grants."""
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    grants = _grants(cursor, TABLE)
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
        "AND indexname <> %s ORDER BY indexname",
        [TABLE, f"{TABLE}_pkey"],
    )
    indexes = cursor.fetchall()
    for name in triggers.NAMES:
        cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {TABLE}")
    definitions = []
    for name, definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
        definitions.append(f'CREATE INDEX "{name}" ON {TABLE} USING ' + definition.split(" USING ", 1)[1])
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey")
    cursor.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY NONE")
    return definitions, grants


def _finish(cursor, connection, definitions: list[str], grants: list[str]) -> None:
    for definition in definitions:
        cursor.execute(definition)
    cursor.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY {TABLE}.seq")
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")
    cursor.execute(f"DROP TABLE {OLD}")
    triggers.install(connection)
    for grant in grants:
        cursor.execute(grant)


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        definitions, grants = _set_aside(cursor)
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING STORAGE) PARTITION BY RANGE (occurred_at)"
        )
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (seq, occurred_at)")
        cursor.execute(f"CREATE TABLE {partitions.DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
        cursor.execute(f"SELECT min(occurred_at) AT TIME ZONE 'UTC' FROM {OLD}")
        oldest = cursor.fetchone()[0]
        now = partitions.current_month()
        first = min(date(oldest.year, oldest.month, 1), now) if oldest else now
        for month in _months(first, partitions.add_months(now, partitions.MONTHS_AHEAD)):
            partitions.create_month(month)
        cursor.execute(
            f"CREATE TRIGGER audit_auditevent_no_truncate BEFORE TRUNCATE ON {partitions.DEFAULT_PARTITION} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
        _finish(cursor, connection, definitions, grants)
        partitions.install_function(cursor)


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DROP FUNCTION IF EXISTS {partitions.FUNCTION}(integer)")
        definitions, grants = _set_aside(cursor)
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING STORAGE)")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (seq)")
        _finish(cursor, connection, definitions, grants)


class Migration(migrations.Migration):
    dependencies = [("audit", "0017_index_diet")]

    operations = [migrations.RunPython(forwards, backwards)]
