"""Let test-database flushes through the audit ledger's append-only triggers.

pytest-django flushes every table after a transactional test (TRUNCATE on PostgreSQL,
DELETE on SQLite), which the audit triggers rightly refuse. Tests only: the flush runs with
the triggers switched off (PostgreSQL: ``session_replication_role = replica`` for the
flush transaction; SQLite: the triggers are dropped and recreated inside it). The chain
head goes with the flush; ``audit.record`` recreates it at genesis.
"""

from __future__ import annotations

from django.db import transaction
from django.db.backends.base.operations import BaseDatabaseOperations

from audit import triggers

_original = BaseDatabaseOperations.execute_sql_flush


def _execute_sql_flush(self, sql_list):
    connection = self.connection
    if not any(triggers.TABLE in sql for sql in sql_list):
        return _original(self, sql_list)
    with transaction.atomic(using=connection.alias, savepoint=connection.features.can_rollback_ddl):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        elif connection.vendor == "sqlite":
            triggers.uninstall(connection)
        _original(self, sql_list)
        if connection.vendor == "sqlite":
            triggers.install(connection)


def allow_flush() -> None:
    BaseDatabaseOperations.execute_sql_flush = _execute_sql_flush
