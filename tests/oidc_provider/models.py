from django.conf import settings
from django.db import models


class Profile(models.Model):
    """What the provider says about how a user signed in: a second factor or not, and an acr."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idp_profile")
    second_factor = models.BooleanField(default=False)
    acr = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"
