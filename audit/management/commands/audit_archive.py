"""Export one old month of the ledger, verify the export, record it, detach and drop the partition.

Run it as the table owner (the role that runs migrations), never as the runtime role::

    DATABASE_URL=postgres://owner@db/custos manage.py audit_archive --month 2026-01 --out /archive/audit

See ``audit.archive`` and docs/audit.md ("Archiving old months").
"""

from django.core.management.base import BaseCommand, CommandError

from audit.archive import ArchiveRefused, archive, parse_month


class Command(BaseCommand):
    help = (
        "Archive one month of the audit ledger (PostgreSQL): write its events and the signed checkpoint "
        "covering them as JSON lines into --out, verify the file, record it, detach and drop the partition."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="the month to archive, YYYY-MM (before the current one)")
        parser.add_argument("--out", required=True, help="directory the export is written to")
        parser.add_argument("--checkpoints", dest="checkpoint_dir", help="directory of signed checkpoints")

    def handle(self, *args, month: str, out: str, checkpoint_dir: str | None, **options):
        try:
            done = archive(parse_month(month), out, checkpoint_dir=checkpoint_dir)
        except ArchiveRefused as refused:
            raise CommandError(f"not archived: {refused}") from refused
        self.stdout.write(
            f"archived {done['month']}: {done['events']} events #{done['first_seq']}..#{done['last_seq']} "
            f"in {done['file']} (sha256 {done['sha256']}), covered by checkpoint #{done['checkpoint_seq']}; "
            f"partition {done['partition']} detached and dropped"
        )
