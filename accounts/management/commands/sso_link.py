from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.actions import user_link_sso, user_unlink_sso
from accounts.models import User
from accounts.sso import PROVIDER_ID


class Command(BaseCommand):
    help = (
        "Link a Custos user to the identity provider's subject identifier (the `sub` claim), so that "
        "signing in there signs in as this user; or --unlink. Recorded on the ledger. The only way an "
        "existing account is joined to single sign-on: never by username or e-mail."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("sub", nargs="?", default="", help="the provider's `sub` for this person")
        parser.add_argument("--unlink", action="store_true", help="remove the user's link instead")
        parser.add_argument("--actor", default="", help="username of the administrator doing it (recorded)")

    def handle(self, *args, username, sub, unlink, actor, **options):
        user = self._user(username)
        by = self._user(actor) if actor else None
        if unlink:
            removed = user_unlink_sso(actor=by, user=user, provider=PROVIDER_ID)
            self.stdout.write(f"{username}: {removed} sign-on link(s) removed")
            return
        if not sub:
            raise CommandError("give the provider's sub to link, or --unlink")
        try:
            user_link_sso(actor=by, user=user, provider=PROVIDER_ID, sub=sub)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"{username} is linked to the sign-on identity {sub}")

    def _user(self, username: str) -> User:
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist as error:
            raise CommandError(f"no user {username!r}") from error
