import sys

from django.core.management.base import BaseCommand, CommandError

from audit.archive import verify_export
from audit.runs import verify_and_record


class Command(BaseCommand):
    help = (
        "Verify the audit chain: recompute every hash, check sequence continuity and agreement with every "
        "signed checkpoint. Prints OK with the count and head, or the first bad sequence number and why."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="from_seq", type=int, default=1, help="start at this sequence number")
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="start after the newest signed checkpoint the last complete verification covered",
        )
        parser.add_argument("--checkpoints", dest="checkpoint_dir", help="directory of signed checkpoints")
        parser.add_argument("--progress", action="store_true", default=None, help="show a progress bar")
        parser.add_argument("--no-progress", dest="progress", action="store_false")
        parser.add_argument(
            "--workers", type=int, default=None, help="processes for a large ledger (default AUDIT_VERIFY_WORKERS)"
        )
        parser.add_argument(
            "--export",
            metavar="FILE",
            help="verify an archived month's export (audit_archive) instead of the database: every hash, every "
            "link and the signed checkpoint in it",
        )

    def handle(
        self,
        *args,
        from_seq: int,
        incremental: bool,
        checkpoint_dir: str | None,
        progress: bool | None,
        workers: int | None,
        export: str | None = None,
        **options,
    ):
        if export:
            check = verify_export(export)
            if not check.ok:
                raise CommandError(f"{export}: {check.summary()}")
            self.stdout.write(check.summary())
            return
        if progress is None:
            progress = sys.stderr.isatty()
        # Recorded on the ledger like every verification, so the verification page shows it.
        result = verify_and_record(
            source="command",
            incremental=incremental,
            from_seq=from_seq,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
            workers=workers,
        )
        if not result.ok:
            raise CommandError(result.summary())
        self.stdout.write(f"{result.summary()} ({result.checkpoints} signed checkpoints agree)")
