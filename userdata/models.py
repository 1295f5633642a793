"""The user-data store of the platform under investigation (its own database alias).

Nothing but ``investigations/gateway.py`` reads these models. Contacts are metadata only:
there is no message content anywhere in this store.
"""

from django.db import models


class Account(models.Model):
    id = models.BigIntegerField(primary_key=True)
    handle = models.CharField(max_length=64, unique=True)
    display_name = models.CharField(max_length=150)
    email = models.CharField(max_length=254, db_index=True)
    phone = models.CharField(max_length=32, db_index=True)
    country = models.CharField(max_length=2)
    created_at = models.DateTimeField()
    # Whether the account belongs to an employee of the platform's operator (the store's own HR
    # link). Purpose limits treat everyone else as a non-employee; unknown means non-employee.
    is_employee = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.id} @{self.handle}"


class LoginEvent(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="logins")
    ip = models.GenericIPAddressField(db_index=True)
    user_agent = models.CharField(max_length=300)
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["account", "occurred_at"])]


class Device(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="devices")
    device_id = models.CharField(max_length=64, db_index=True)
    model = models.CharField(max_length=100)
    os = models.CharField(max_length=50)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["account", "last_seen"])]


class LocationEvent(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="locations")
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2)
    latitude = models.DecimalField(max_digits=5, decimal_places=2)  # coarse: about 1 km
    longitude = models.DecimalField(max_digits=6, decimal_places=2)
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["account", "occurred_at"])]


class Connection(models.Model):
    """An edge of the contacts graph: who is connected to whom, since when. No content."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="connections")
    contact = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20)  # follow, contact, message_thread
    created_at = models.DateTimeField()
    last_interaction_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["account", "last_interaction_at"])]
        constraints = [models.UniqueConstraint(fields=["account", "contact", "kind"], name="unique_connection")]
