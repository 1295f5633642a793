"""A journalist and the people around her, written into the user-data store for oversight tests.

Account 901 is a journalist (registered by the tests that need it): known by an email, a
phone, a device and an IP she logged in from three days ago. 902 is her second account on
the same phone; 903 a colleague who logged in from the same IP. Account 1 (seeded) has 901
as a contact; 901 has account 3 as one.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from userdata.models import Account, Connection, Device, LoginEvent
from userdata.seed import seeding

JOURNALIST = 901
SECOND_ACCOUNT = 902
COLLEAGUE = 903
EMAIL = "jane@press.example"
PHONE = "+4915550001"
IP = "198.51.100.7"
DEVICE = "dev-press-901"
STORE = "userdata"


def _account(pk: int, handle: str, email: str, phone: str, employee: bool = False) -> None:
    Account.objects.using(STORE).create(
        id=pk,
        handle=handle,
        display_name=handle.replace("_", " ").title(),
        email=email,
        phone=phone,
        country="DE",
        created_at=timezone.now() - timedelta(days=900),
        is_employee=employee,
    )


def add_press_accounts() -> None:
    now = timezone.now()
    with seeding():
        _account(JOURNALIST, "press_jane", EMAIL, PHONE)
        _account(SECOND_ACCOUNT, "jane_alt", "other@mail.example", PHONE)
        _account(COLLEAGUE, "press_colleague", "colleague@press.example", "+4915550003")
        for account in (JOURNALIST, COLLEAGUE):
            LoginEvent.objects.using(STORE).create(
                account_id=account, ip=IP, user_agent="Mozilla/5.0", occurred_at=now - timedelta(days=3)
            )
        Device.objects.using(STORE).create(
            account_id=JOURNALIST,
            device_id=DEVICE,
            model="Pixel 8",
            os="Android 15",
            first_seen=now - timedelta(days=60),
            last_seen=now - timedelta(days=2),
        )
        for account, contact in ((1, JOURNALIST), (JOURNALIST, 3)):
            Connection.objects.using(STORE).create(
                account_id=account,
                contact_id=contact,
                kind="oversight_test",
                created_at=now - timedelta(days=40),
                last_interaction_at=now - timedelta(days=2),
            )


def add_rows_for_tripwire() -> None:
    """Rows a faulty catalogue entry would reach: the journalist has account 1 as a contact and
    logged in recently; account 2 too (a named subject, whose rows must survive)."""
    now = timezone.now()
    with seeding():
        for account in (JOURNALIST, 2):
            Connection.objects.using(STORE).create(
                account_id=account,
                contact_id=1,
                kind="oversight_test",
                created_at=now - timedelta(days=40),
                last_interaction_at=now - timedelta(days=2),
            )
        LoginEvent.objects.using(STORE).create(
            account_id=2, ip="192.0.2.20", user_agent="Mozilla/5.0", occurred_at=now - timedelta(days=1)
        )
