from django.core.management.base import BaseCommand

from audit.checkpoints import published_public_key


class Command(BaseCommand):
    help = "Print the base64 Ed25519 public key that verifiers pin (AUDIT_VERIFY_KEYS)."

    def handle(self, *args, **options):
        self.stdout.write(published_public_key())
