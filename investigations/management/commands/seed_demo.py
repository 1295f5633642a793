from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

from accounts.actions import second_factor_enrol_totp, user_create
from accounts.factors import second_factor_required
from accounts.models import User
from investigations import notify
from investigations.demo import DEMO_ACCOUNTS, seed_story
from userdata.seed import describe_accounts, seed_userdata, store_is_empty

DEMO_PASSWORD = "custos-demo-2026"  # noqa: S105  (embedded default only; refused elsewhere)
# Authenticator-app (TOTP) secrets of the demo users whose role needs a second factor
# (CUSTOS_MFA_REQUIRED_ROLES): add one to any authenticator app to sign in as that user.
DEMO_TOTP_SECRETS = {
    "lena": "LENADEMOCUSTOSTOTPSECRETAAAAAAAA",
    "sam": "SAMDEMOCUSTOSTOTPSECRETAAAAAAAAA",
    "aude": "AUDEDEMOCUSTOSTOTPSECRETAAAAAAAA",
    "adam": "ADAMDEMOCUSTOSTOTPSECRETAAAAAAAA",
}
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
    help = (
        "Create one demo user per role, a small synthetic user-data set and four demo cases told "
        "through the actions (embedded default only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=500)
        parser.add_argument(
            "--no-logins", action="store_true", help="Leave the logins out (make run prints them once the web answers)."
        )

    def handle(self, *args, accounts, no_logins=False, **options):
        if not settings.EMBEDDED:
            raise CommandError("seed_demo only runs on the embedded default (SQLite); it sets a known password.")
        if store_is_empty():
            seed_userdata(accounts=accounts, seed=2026)
        # Users and story in one transaction (a failed story leaves no half demo); the story's
        # e-mails go nowhere: on the console they would bury the demo logins, and the same
        # notifications are in the app.
        with (
            override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
            transaction.atomic(),
            notify.discarded(),
        ):
            people = self._users()
            cases = seed_story(people) if people else []
        if cases:
            self.stdout.write("Demo cases: " + ", ".join(f"{case.reference} ({case.status_phrase})" for case in cases))
        else:
            self.stdout.write("Demo data already present; nothing changed.")
        self.stdout.write(f"Accounts the demo cases name (any account 1-{accounts} can be requested):")
        for account in describe_accounts(DEMO_ACCOUNTS):
            self.stdout.write(f"  {account['id']:>3}  {account['handle']:<24} {account['email']:<36} {account['ip']}")
        if not no_logins:
            self.stdout.write(self.logins())

    @staticmethod
    def logins() -> str:
        lines = [f"Demo logins (password for all: {DEMO_PASSWORD}):"]
        for username, name, roles, staff in DEMO_USERS:
            role_text = ", ".join(roles) or ("admin (staff)" if staff else "")
            lines.append(f"  {username:<6} {name:<20} {role_text}")
        lines.append("Second factor: these users' roles need one; add the secret to any authenticator app")
        lines.append("(TOTP, 6 digits, 30 s; or scan it from the otpauth link) and type its code after the password:")
        for username, secret in DEMO_TOTP_SECRETS.items():
            lines.append(f"  {username:<6} {secret}  otpauth://totp/Custos:{username}?secret={secret}&issuer=Custos")
        return "\n".join(lines)

    def _users(self) -> dict[str, User]:
        if User.objects.filter(username=DEMO_USERS[0][0]).exists():
            return {}
        people = {}
        for username, name, roles, staff in DEMO_USERS:
            first, last = name.split(" ", 1)
            people[username] = user_create(
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
            if username in DEMO_TOTP_SECRETS and second_factor_required(people[username]):
                second_factor_enrol_totp(actor=None, user=people[username], secret=DEMO_TOTP_SECRETS[username])
        return people
