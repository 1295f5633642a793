"""The sealer's UPDATE rule compares the other columns one by one (PostgreSQL).

Same rule as ``0016_sealed_later`` (only filling both chain columns of an unsealed event,
every other column unchanged), checked as a row of column values instead of ``to_jsonb`` of
the whole old and new rows, which cost about half of each seal's UPDATE. The row triggers on
the partitioned table (cloned to every partition) call the function by name, so replacing its
body is enough. SQLite's triggers refuse every UPDATE and are unchanged.
"""

from django.db import migrations

from audit import triggers

_PREVIOUS = """
    CREATE OR REPLACE FUNCTION audit_seal_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.hash IS NULL AND OLD.prev_hash IS NULL
           AND NEW.hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
           AND (to_jsonb(NEW) - 'hash' - 'prev_hash') = (to_jsonb(OLD) - 'hash' - 'prev_hash') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit events are append-only: % on % refused (only sealing fills an unsealed event''s chain)',
            TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END
    $$
"""


def _replace(body: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:  # no parameters: the body holds % signs
            cursor.execute(body)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0018_partition_by_month")]

    operations = [migrations.RunPython(_replace(triggers.SEAL_ONLY_FUNCTION), _replace(_PREVIOUS))]
