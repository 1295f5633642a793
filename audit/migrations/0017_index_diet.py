"""The audit table's index diet: only the indexes a query uses, and a seal that writes no index entry.

- ``hash`` and ``prev_hash`` lose their UNIQUE constraints (and indexes): no query looks an
  event up by its hash; the verifier finds a fork or a duplicated link as a broken link, and
  the sealer refuses to chain on from a head that does not match the chain (``audit.sealer``).
  A unique index also cannot exist on a table partitioned by time.
- The partial index of unsealed events goes: the sealer finds its work past the head by the
  primary key. Its predicate named ``hash``, so every seal had to write new index entries.
- ``actor_id`` loses its index: the oversight rules that filter by actor also filter by
  action and a window of ``occurred_at``, which the remaining indexes serve.

With no indexed column changed, the sealer's UPDATE can be a HOT update on PostgreSQL.
SQLite rebuilds the table to drop the constraints, which drops its triggers: they are
installed again.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from audit import triggers


def reinstall_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        triggers.uninstall(schema_editor.connection)
        triggers.install(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0016_sealed_later'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='auditevent',
            name='audit_event_unsealed',
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='actor',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(reinstall_sqlite_triggers, reinstall_sqlite_triggers),
    ]
