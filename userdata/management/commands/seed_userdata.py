from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from userdata.seed import seed_userdata


class Command(BaseCommand):
    help = "Replace the user-data store with deterministic synthetic accounts and events."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--anchor", help="YYYY-MM-DD: events fall in the year before it (default today)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, accounts, seed, anchor, no_progress, **options):
        if not 1 <= accounts <= 10_000_000:
            raise CommandError("--accounts must be between 1 and 10,000,000")
        anchor_at = None
        if anchor:
            try:
                anchor_at = datetime.strptime(anchor, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as error:
                raise CommandError("--anchor must be a date as YYYY-MM-DD") from error
        with tqdm(total=accounts, unit="account", disable=no_progress) as bar:
            counts = seed_userdata(accounts=accounts, seed=seed, anchor=anchor_at, progress=bar.update)
        self.stdout.write(", ".join(f"{key}: {value:,}" for key, value in counts.items()))
