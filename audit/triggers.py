"""Database triggers that refuse changes to audit events (the second wall).

PostgreSQL: row-level BEFORE UPDATE and BEFORE DELETE triggers, and a statement-level
BEFORE TRUNCATE trigger (row triggers do not fire on TRUNCATE). SQLite: BEFORE UPDATE and
BEFORE DELETE triggers (SQLite has no TRUNCATE).

The one UPDATE PostgreSQL lets through is the sealer's (``audit.sealer``): filling the chain
columns of an event that has none yet, every other column unchanged. An event is therefore
sealed at most once, and its content never changes; a seal written by anyone but the sealer
(the runtime role may UPDATE those two columns) is a hash the verifier recomputes and refuses.

Installed by migration ``0003_append_only_triggers``; the sealer's rule by ``0016_sealed_later``,
its column-by-column form by ``0019_seal_rule_by_columns``. The table owner can still disable
them (``ALTER TABLE ... DISABLE TRIGGER``), which is why the runtime role must not own the
table, and why the hash chain and signed checkpoints exist. On SQLite, a later migration
that rebuilds ``audit_auditevent`` drops these triggers: such a migration must call
:func:`install` again (a test checks they are present).
"""

from __future__ import annotations

from .ledger import HASHED_FIELDS

TABLE = "audit_auditevent"
NAMES = ("audit_auditevent_no_update", "audit_auditevent_no_delete", "audit_auditevent_no_truncate")

# Every column of the table but the two chain columns: a seal must leave each unchanged. They
# are the hashed fields but ``prev_hash`` (a column added to the table must be hashed, so added
# there; a test compares this list with the table's).
SEALED_COLUMNS = tuple(name for name in HASHED_FIELDS if name != "prev_hash")

# Sealing fills prev_hash and hash of an unsealed event; anything else is refused. The other
# columns are compared as one row of values (``IS NOT DISTINCT FROM``: NULL equals NULL), not
# as ``to_jsonb`` of the whole row, which built two JSON documents per sealed event and was
# about half of the seal's UPDATE time.
SEAL_ONLY_FUNCTION = """
    CREATE OR REPLACE FUNCTION audit_seal_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.hash IS NULL AND OLD.prev_hash IS NULL
           AND NEW.hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
           AND ({new}) IS NOT DISTINCT FROM ({old}) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit events are append-only: % on % refused (only sealing fills an unsealed event''s chain)',
            TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END
    $$
""".format(
    new=", ".join(f"NEW.{name}" for name in SEALED_COLUMNS),
    old=", ".join(f"OLD.{name}" for name in SEALED_COLUMNS),
)

POSTGRES_INSTALL = [
    """
    CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    SEAL_ONLY_FUNCTION,
    f"CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION audit_seal_only()",
    f"CREATE TRIGGER audit_auditevent_no_delete BEFORE DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
    f"CREATE TRIGGER audit_auditevent_no_truncate BEFORE TRUNCATE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
]
POSTGRES_UNINSTALL = [
    *(f"DROP TRIGGER IF EXISTS {name} ON {TABLE}" for name in NAMES),
    "DROP FUNCTION IF EXISTS audit_refuse_change()",
    "DROP FUNCTION IF EXISTS audit_seal_only()",
]

SQLITE_INSTALL = [
    f"CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END",
    f"CREATE TRIGGER audit_auditevent_no_delete BEFORE DELETE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END",
]
SQLITE_UNINSTALL = [f"DROP TRIGGER IF EXISTS {name}" for name in NAMES[:2]]


def statements(vendor: str, *, install: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRES_INSTALL if install else POSTGRES_UNINSTALL
    if vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_UNINSTALL
    return []


def install(connection) -> None:
    with connection.cursor() as cursor:
        for sql in statements(connection.vendor, install=True):
            cursor.execute(sql)


def uninstall(connection) -> None:
    with connection.cursor() as cursor:
        for sql in statements(connection.vendor, install=False):
            cursor.execute(sql)


def installed(connection) -> set[str]:
    """Names of the audit triggers present in the database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [TABLE],
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [TABLE])
        return {row[0] for row in cursor.fetchall()}
