import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.actions import user_set_password
from accounts.models import User


class Command(BaseCommand):
    help = (
        "Set a user's password, non-interactively, through the audited action: every session and API "
        "token of the user ends. The password comes from an environment variable. Use this rather than "
        "Django's changepassword, which writes past the ledger."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--password-env",
            default="CUSTOS_PASSWORD",
            help="name of the environment variable holding the password (default CUSTOS_PASSWORD)",
        )

    def handle(self, *args, username, password_env, **options):
        password = os.environ.get(password_env, "")
        if not password:
            raise CommandError(f"set the password in ${password_env}")
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist as error:
            raise CommandError(f"no user {username!r}") from error
        try:
            user_set_password(actor=None, user=user, password=password)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"password of {username} set; their sessions and API tokens have ended")
