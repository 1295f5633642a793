import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.actions import UnknownRoleError, user_create
from accounts.roles import ALL_ROLES


class Command(BaseCommand):
    help = "Create a user with roles, non-interactively. The password comes from an environment variable."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--role", action="append", default=[], choices=ALL_ROLES, dest="roles")
        parser.add_argument("--staff", action="store_true", help="may use the admin site (manages users)")
        parser.add_argument(
            "--password-env",
            default="CUSTOS_PASSWORD",
            help="name of the environment variable holding the password (default CUSTOS_PASSWORD)",
        )

    def handle(self, *args, username, email, first_name, last_name, roles, staff, password_env, **options):
        password = os.environ.get(password_env, "")
        if not password:
            raise CommandError(f"set the password in ${password_env}")
        try:
            user = user_create(
                actor=None,
                username=username,
                password=password,
                email=email,
                first_name=first_name,
                last_name=last_name,
                roles=roles,
                is_staff=staff,
            )
        except (ValidationError, UnknownRoleError) as error:
            messages = error.messages if isinstance(error, ValidationError) else [str(error)]
            raise CommandError("; ".join(messages)) from error
        self.stdout.write(f"created {user.username} with roles: {', '.join(sorted(roles)) or '(none)'}")
