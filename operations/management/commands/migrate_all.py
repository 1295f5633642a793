from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections
from django.db.migrations.executor import MigrationExecutor


class Command(BaseCommand):
    help = "Migrate every database (the app's and the user-data store) and say in one line each what was applied."

    def handle(self, *args, **options):
        for alias in settings.DATABASES:
            executor = MigrationExecutor(connections[alias])
            pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
            call_command("migrate", database=alias, interactive=False, verbosity=0)
            done = f"{pending} migration{'s' if pending != 1 else ''} applied" if pending else "up to date"
            self.stdout.write(f"database {alias}: {done}")
