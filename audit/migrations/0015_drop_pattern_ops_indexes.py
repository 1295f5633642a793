"""Drop the audit table's five pattern-ops index copies (PostgreSQL only).

Django makes a ``varchar_pattern_ops`` copy of every indexed or unique CharField for
``LIKE 'prefix%'`` lookups. The ledger is filtered by exact action, actor username and case
reference (the btree indexes), searched with ``icontains`` (which neither kind of index
serves), and looked up by ``seq``; no query uses a prefix match, so these copies only cost
every append five index writes and their disk. The btree indexes, the unique guards on
``hash`` and ``prev_hash`` and the primary key stay. SQLite never had them.
"""

from django.db import migrations

PATTERN_OPS_COPIES = (
    "audit_auditevent_action_2131bb77_like",
    "audit_auditevent_actor_username_45331152_like",
    "audit_auditevent_case_reference_81ad791a_like",
    "audit_auditevent_hash_d0c402da_like",
    "audit_auditevent_prev_hash_32dd1626_like",
)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in PATTERN_OPS_COPIES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in PATTERN_OPS_COPIES:
        column = name.removeprefix("audit_auditevent_").rsplit("_", 2)[0]
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(name)} "
            f"ON audit_auditevent ({schema_editor.quote_name(column)} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0014_growing_choices")]

    operations = [migrations.RunPython(drop, create)]
