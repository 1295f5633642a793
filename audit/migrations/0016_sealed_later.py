"""Events are chained after they commit, by one sealer (``audit.sealer``), so writers take no shared lock.

- ``prev_hash`` and ``hash`` may be empty (NULL) until the sealer chains the event; the
  events already in the table keep theirs, untouched.
- PostgreSQL: ``seq`` comes from the sequence ``audit_auditevent_seq`` (started after the
  newest event), and the UPDATE trigger lets exactly one change through: sealing, which
  fills the two chain columns of an event that has none (``audit.triggers``).
- SQLite rebuilds the table to change the columns, which drops its triggers: they are
  installed again.
- A partial index holds the events not sealed yet (the sealer's work list).
"""

from django.db import migrations, models

from audit import triggers

SEQUENCE = "audit_auditevent_seq"


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        triggers.install(connection)
        return
    if connection.vendor != "postgresql":
        return
    schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} AS bigint OWNED BY audit_auditevent.seq")
    schema_editor.execute(
        f"""SELECT setval('{SEQUENCE}', GREATEST(last, 1), last > 0)
              FROM (SELECT GREATEST((SELECT coalesce(max(seq), 0) FROM audit_auditevent),
                                    (SELECT coalesce(max(seq), 0) FROM audit_chainhead)) AS last) AS newest"""
    )
    schema_editor.execute(f"ALTER TABLE audit_auditevent ALTER COLUMN seq SET DEFAULT nextval('{SEQUENCE}')")
    with connection.cursor() as cursor:  # no parameters: the function's body holds % signs
        cursor.execute(triggers.SEAL_ONLY_FUNCTION)
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditevent_no_update ON audit_auditevent")
    schema_editor.execute(
        "CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent "
        "FOR EACH ROW EXECUTE FUNCTION audit_seal_only()"
    )


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        triggers.install(connection)
        return
    if connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditevent_no_update ON audit_auditevent")
    schema_editor.execute(
        "CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
    )
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_seal_only()")
    schema_editor.execute("ALTER TABLE audit_auditevent ALTER COLUMN seq DROP DEFAULT")
    schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0015_drop_pattern_ops_indexes")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(condition=models.Q(hash__isnull=True), fields=["seq"], name="audit_event_unsealed"),
        ),
        migrations.RunPython(forwards, backwards),
    ]
