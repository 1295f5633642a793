from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (separation-of-duties check; auth events feed the ledger)
