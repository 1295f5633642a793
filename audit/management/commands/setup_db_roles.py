"""Create the PostgreSQL runtime role the application should connect as.

Run it as the database owner (the role that runs migrations), after every ``migrate``::

    CUSTOS_APP_PASSWORD=... manage.py setup_db_roles --role custos_app --password-env CUSTOS_APP_PASSWORD

then point the application's ``DATABASE_URL`` at ``custos_app`` while migrations keep
running as the owner. The runtime role gets SELECT, INSERT, UPDATE and DELETE on the app's
tables except the audit ledger, where it gets SELECT, INSERT and UPDATE of the two chain
columns only (``prev_hash``, ``hash``: the sealer fills them once; the trigger refuses any
other change), and the chain head: SELECT, INSERT, UPDATE. It never owns a table, so it cannot ALTER or DISABLE TRIGGER.
On the ledger's monthly partitions (``audit.partitions``) it gets nothing: it reaches their rows
through the partitioned table only, and cannot detach, drop or truncate them; it may EXECUTE
``audit_create_partitions`` (which makes the coming months' partitions, and nothing else).
Idempotent: run it again to re-apply the grants.
"""

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from audit import partitions

# Sealing (audit.sealer) fills the chain columns of an unsealed event; the UPDATE trigger
# refuses every other change, and any second seal.
APPEND_ONLY_TABLES = {"audit_auditevent": "SELECT, INSERT, UPDATE (prev_hash, hash)"}
RESTRICTED_TABLES = {"audit_chainhead": "SELECT, INSERT, UPDATE"}
DEFAULT_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


class Command(BaseCommand):
    help = "Create (idempotently) the runtime PostgreSQL role: no UPDATE/DELETE/TRUNCATE on the audit ledger."

    def add_arguments(self, parser):
        parser.add_argument("--role", default="custos_app", help="runtime role name (default custos_app)")
        parser.add_argument(
            "--password-env", help="environment variable holding the role's password; without it the role is NOLOGIN"
        )

    def handle(self, *args, role: str, password_env: str | None, **options):
        if connection.vendor != "postgresql":
            raise CommandError("setup_db_roles needs PostgreSQL; the embedded default relies on triggers and models")
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"environment variable {password_env} is empty")
        with transaction.atomic(), connection.cursor() as cursor:
            self._create_role(cursor, role, password)
            tables = self._grant(cursor, role)
        self.stdout.write(f"role {role}: grants applied on {tables} tables; audit ledger: SELECT, INSERT, sealing")

    def _create_role(self, cursor, role: str, password: str | None) -> None:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        existing = cursor.fetchone()
        if existing and existing[0]:
            raise CommandError(f"{role} is a superuser; choose a different runtime role")
        name = connection.ops.quote_name(role)
        login = "LOGIN" if password else "NOLOGIN"
        if not existing:
            cursor.execute(f"CREATE ROLE {name} {login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
        cursor.execute(f"ALTER ROLE {name} {login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
        if password:
            cursor.execute(f"ALTER ROLE {name} PASSWORD %s", [password])

    def _grant(self, cursor, role: str) -> int:
        name = connection.ops.quote_name(role)
        cursor.execute("SELECT current_database(), current_schema()")
        database, schema = cursor.fetchone()
        cursor.execute(f"GRANT CONNECT ON DATABASE {connection.ops.quote_name(database)} TO {name}")
        cursor.execute(f"GRANT USAGE ON SCHEMA {connection.ops.quote_name(schema)} TO {name}")
        cursor.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        tables = cursor.fetchall()
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = to_regclass(%s)",
            [partitions.TABLE],
        )
        ledger_partitions = {row[0] for row in cursor.fetchall()}
        for table, owner in tables:
            if owner == role:
                raise CommandError(f"{role} owns {table}; the runtime role must not own any table")
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"REVOKE ALL ON {quoted} FROM {name}")
            if table in ledger_partitions:
                continue  # through the partitioned table only
            privileges = APPEND_ONLY_TABLES.get(table) or RESTRICTED_TABLES.get(table) or DEFAULT_PRIVILEGES
            cursor.execute(f"GRANT {privileges} ON {quoted} TO {name}")
        cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [f"{partitions.FUNCTION}(integer)"])
        if cursor.fetchone()[0]:
            cursor.execute(f"GRANT EXECUTE ON FUNCTION {partitions.FUNCTION}(integer) TO {name}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {connection.ops.quote_name(schema)} TO {name}")
        return len(tables)
