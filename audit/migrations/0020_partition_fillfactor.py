"""PostgreSQL: the ledger's partitions leave room on each heap page for the seal; SQLite: nothing.

Forwards: every attached partition, the DEFAULT one included, gets ``fillfactor``
``audit.partitions.FILLFACTOR`` (PostgreSQL takes no storage parameter on the partitioned parent),
and ``audit_create_partitions`` is replaced by the same function (SECURITY DEFINER, same
search_path, EXECUTE still revoked from PUBLIC; a replaced function keeps its owner and the
runtime role's grant) that makes new partitions with it. The setting applies to pages written
from now on: rows already stored stay where they are.

Backwards: the partitions get PostgreSQL's default back (full pages) and the function makes
partitions without the setting again.

``ALTER TABLE ... SET (fillfactor)`` takes a SHARE UPDATE EXCLUSIVE lock: writers go on.
"""

from django.db import migrations

from audit import partitions


def _attached(cursor) -> list[str]:
    cursor.execute(
        "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
        "WHERE pg_inherits.inhparent = %s::regclass ORDER BY child.relname",
        [partitions.TABLE],
    )
    return [row[0] for row in cursor.fetchall()]


def _set_on_every_partition(schema_editor, fillfactor: int | None) -> None:
    """``fillfactor`` on every attached partition (None: PostgreSQL's default, full pages), and
    the function that makes the coming ones made to give it."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    setting = f"SET (fillfactor = {int(fillfactor)})" if fillfactor else "RESET (fillfactor)"
    with connection.cursor() as cursor:
        for name in _attached(cursor):
            cursor.execute(f"ALTER TABLE {quote(name)} {setting}")
        partitions.install_function(cursor, fillfactor=fillfactor)


def forwards(apps, schema_editor):
    _set_on_every_partition(schema_editor, partitions.FILLFACTOR)


def backwards(apps, schema_editor):
    _set_on_every_partition(schema_editor, None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0019_seal_rule_by_columns")]

    operations = [migrations.RunPython(forwards, backwards)]
