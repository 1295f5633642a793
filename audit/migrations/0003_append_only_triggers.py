"""Triggers that refuse UPDATE, DELETE and TRUNCATE on audit events (see audit.triggers)."""

from django.db import migrations

from audit import triggers


def install(apps, schema_editor):
    for sql in triggers.statements(schema_editor.connection.vendor, install=True):
        schema_editor.execute(sql, None)


def uninstall(apps, schema_editor):
    for sql in triggers.statements(schema_editor.connection.vendor, install=False):
        schema_editor.execute(sql, None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain_head")]
    operations = [migrations.RunPython(install, uninstall)]
