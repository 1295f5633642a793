from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.actions import user_create
from accounts.models import User
from userdata.models import Account
from userdata.seed import seed_userdata

DEMO_PASSWORD = "custos-demo-2026"  # noqa: S105  (embedded default only; refused elsewhere)
DEMO_USERS = [
    # username, full name, roles, staff
    ("ines", "Ines Investigator", ["investigator"], False),
    ("omar", "Omar Investigator", ["investigator"], False),
    ("lena", "Lena Legal", ["legal_reviewer"], False),
    ("sam", "Sam Senior-Legal", ["legal_reviewer", "senior_legal_reviewer"], False),
    ("aude", "Aude Auditor", ["auditor"], False),
    ("adam", "Adam Admin", [], True),
]


class Command(BaseCommand):
    help = "Create one demo user per role and a small synthetic user-data set (embedded default only)."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=500)

    def handle(self, *args, accounts, **options):
        if not settings.EMBEDDED:
            raise CommandError("seed_demo only runs on the embedded default (SQLite); it sets a known password.")
        created = self._users()
        if not Account.objects.exists():
            counts = seed_userdata(accounts=accounts, seed=2026)
            self.stdout.write(f"user-data store seeded: {counts}")
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, name, roles, staff in DEMO_USERS:
            role_text = ", ".join(roles) or ("admin (staff)" if staff else "")
            self.stdout.write(f"  {username:<6} {name:<20} {role_text}")
        if not created:
            self.stdout.write("(demo users already existed; nothing changed)")

    @transaction.atomic
    def _users(self) -> bool:
        if User.objects.filter(username=DEMO_USERS[0][0]).exists():
            return False
        for username, name, roles, staff in DEMO_USERS:
            first, last = name.split(" ", 1)
            user_create(
                actor=None,
                username=username,
                password=DEMO_PASSWORD,
                first_name=first,
                last_name=last,
                email=f"{username}@example.org",
                roles=roles,
                is_staff=staff,
                validate=False,
            )
        return True
