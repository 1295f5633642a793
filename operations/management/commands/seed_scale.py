from django.core.management.base import BaseCommand, CommandError

from operations.scale import NotPostgres, seed_scale

LIMIT = 100_000_000


class Command(BaseCommand):
    help = (
        "Add realistic volumes for measuring Custos at scale, in minutes: cases (each with its lead's "
        "membership and object permissions, as case_open leaves them), ledger events (through "
        "audit.record_many, so the chain stays valid: run verify_audit afterwards), user-data accounts and "
        "login events. Set-based SQL (generate_series): PostgreSQL only. Adds to what is there; never in "
        "production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cases", type=int, default=0, help="cases to add (default 0)")
        parser.add_argument("--events", type=int, default=0, help="ledger events to append (default 0)")
        parser.add_argument("--accounts", type=int, default=0, help="user-data accounts to add (default 0)")
        parser.add_argument(
            "--login-events", type=int, default=0, help="logins to add over the store's accounts (default 0)"
        )
        parser.add_argument("--leads", type=int, default=20, help="investigators leading the cases (default 20)")
        parser.add_argument("--days", type=int, default=365, help="the span the rows are spread over (default 365)")

    def handle(self, *args, cases, events, accounts, login_events, leads, days, **options):
        for name, value in (("cases", cases), ("events", events), ("accounts", accounts)):
            if not 0 <= value <= LIMIT:
                raise CommandError(f"--{name} must be between 0 and {LIMIT:,}")
        if not 0 <= login_events <= LIMIT:
            raise CommandError(f"--login-events must be between 0 and {LIMIT:,}")
        if not 1 <= leads <= 999:
            raise CommandError("--leads must be between 1 and 999")
        if not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3,650")
        if not any((cases, events, accounts, login_events)):
            raise CommandError("nothing to seed: give --cases, --events, --accounts or --login-events")
        try:
            counts = seed_scale(
                cases=cases,
                events=events,
                accounts=accounts,
                login_events=login_events,
                leads=leads,
                days=days,
                progress=lambda line: self.stdout.write(line),
            )
        except (NotPostgres, ValueError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"seeded {counts.cases:,} cases, {counts.events:,} events, {counts.accounts:,} accounts, "
            f"{counts.login_events:,} login events in {counts.seconds} s"
        )
