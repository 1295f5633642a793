"""Model fields shared by the apps."""

from __future__ import annotations

from django.db import models


class GrowingChoicesField(models.CharField):
    """A CharField whose choices list grows with the product (event types, alert kinds).

    The choices work as usual at runtime (forms, admin filters, ``get_FOO_display``), but are
    left out of migrations: they change nothing in the database, and keeping them there made
    every new event type a migration that collided with every other branch's.
    """

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        kwargs.pop("choices", None)
        return name, "django.db.models.CharField", args, kwargs
