from django.core.management.base import BaseCommand

from audit.checkpoints import seal


class Command(BaseCommand):
    help = "Sign the current audit chain head and write the checkpoint outside the database."

    def add_arguments(self, parser):
        parser.add_argument("--dir", dest="directory", help="checkpoint directory (default AUDIT_CHECKPOINT_DIR)")

    def handle(self, *args, directory: str | None, **options):
        checkpoint = seal(directory)
        self.stdout.write(f"sealed seq {checkpoint.seq} head {checkpoint.head} -> {checkpoint.path}")
