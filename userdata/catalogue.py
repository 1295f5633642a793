"""The catalogue of data categories: one place that says what each category exposes.

The gateway builds every query from this: the model, the fields a grantee may see, the
column that places a row in time (for the grant's window) and the column that ties it to a
subject account.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Model

from . import models


@dataclass(frozen=True)
class DataCategory:
    name: str
    label: str
    model: type[Model]
    fields: tuple[str, ...]
    time_field: str | None  # None: not windowed (the current state, e.g. the profile)
    subject_field: str
    description: str

    @property
    def windowed(self) -> bool:
        """Whether a query's time window limits the rows (events do; the current profile does not)."""
        return self.time_field is not None


CATEGORIES: dict[str, DataCategory] = {
    category.name: category
    for category in [
        DataCategory(
            name="profile",
            label="Profile",
            model=models.Account,
            fields=("id", "handle", "display_name", "email", "phone", "country", "created_at"),
            # A profile is the account as it is now, not a series of events: the request's
            # window does not limit it (filtering on the account's creation date hid it).
            time_field=None,
            subject_field="id",
            description="The account's current profile: handle, display name, email, phone, country. "
            "Not limited by the time window.",
        ),
        DataCategory(
            name="ip_logs",
            label="IP logs",
            model=models.LoginEvent,
            fields=("account_id", "ip", "user_agent", "occurred_at"),
            time_field="occurred_at",
            subject_field="account_id",
            description="Logins: IP address, user agent and time.",
        ),
        DataCategory(
            name="devices",
            label="Devices",
            model=models.Device,
            fields=("account_id", "device_id", "model", "os", "first_seen", "last_seen"),
            time_field="last_seen",
            subject_field="account_id",
            description="Devices seen on the account.",
        ),
        DataCategory(
            name="location",
            label="Location",
            model=models.LocationEvent,
            fields=("account_id", "city", "country", "latitude", "longitude", "occurred_at"),
            time_field="occurred_at",
            subject_field="account_id",
            description="Coarse locations (city, about 1 km) with time.",
        ),
        DataCategory(
            name="contacts",
            label="Contacts (metadata)",
            model=models.Connection,
            fields=("account_id", "contact_id", "kind", "created_at", "last_interaction_at"),
            time_field="last_interaction_at",
            subject_field="account_id",
            description="Connected accounts' ids and connection metadata; never message content.",
        ),
    ]
}


def owner_column(model: type[Model]) -> str:
    """The column naming the account a row is about, whatever a category filters on.

    Every model of the store belongs to one account through its ``account`` foreign key
    (an ``Account`` row to itself). The gateway checks each row it is about to return against
    this, independently of the catalogue's ``subject_field``, so a catalogue mistake (a filter
    that reaches other accounts' rows through a join) cannot leak them.
    """
    return "id" if model is models.Account else "account_id"


CATEGORY_CHOICES = [(category.name, category.label) for category in CATEGORIES.values()]

# Result columns as people say them; any other column reads as its name in words ("occurred_at"
# is "Occurred at"). Pages show these; the CSV and the result digest keep the names.
COLUMN_LABELS = {
    "id": "Account",
    "account_id": "Account",
    "ip": "IP address",
    "os": "OS",
    "device_id": "Device",
    "contact_id": "Contact",
}


def column_label(name: str) -> str:
    return COLUMN_LABELS.get(name, name.replace("_", " ").capitalize())
