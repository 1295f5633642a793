from __future__ import annotations

from datetime import datetime
from functools import cached_property, lru_cache
from zoneinfo import available_timezones as _zones

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models

from .roles import REVIEWER_ROLES, Role
from .usernames import canonical, check_username, skeleton


@lru_cache(maxsize=1)
def available_timezones() -> frozenset[str]:
    """The IANA zones the system knows (read once: it walks the zone database)."""
    return frozenset(_zones())


class UserManager(BaseUserManager):
    """Django's manager, except that ``createsuperuser`` (and anything else creating users through
    the manager) goes through the accounts actions, so the new user is on the ledger."""

    def create_user(self, username: str, email: str | None = None, password: str | None = None, **extra) -> User:
        from .actions import user_create

        return user_create(actor=None, username=username, email=email or "", password=password, validate=False, **extra)

    def create_superuser(self, username: str, email: str | None = None, password: str | None = None, **extra) -> User:
        from django.db import transaction

        from .actions import user_set_privileges

        with transaction.atomic():
            extra.pop("is_superuser", None)
            user = self.create_user(username, email, password, **{**extra, "is_staff": True})
            return user_set_privileges(actor=None, user=user, is_staff=True, is_superuser=True)


def _check_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not a time zone Custos knows; choose one from the list.")


class User(AbstractUser):
    """A Custos user. Roles come from group membership; superuser opens nothing in the data path."""

    objects = UserManager()

    # Every date and time the user reads (pages, e-mails) is shown in this zone (accounts.middleware).
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[_check_time_zone],
        help_text="Dates and times in pages and e-mails are shown in this time zone.",
    )

    # What the username looks like (accounts.usernames.skeleton): a name whose skeleton another
    # user has is refused, so no one can pass for someone else with look-alike letters.
    username_skeleton = models.CharField(max_length=600, db_index=True, editable=False, default="")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["username"]

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        user._stored_username = user.__dict__.get("username")
        return user

    def clean(self) -> None:
        super().clean()  # NFKC
        try:
            check_username(self.username, others=User.objects.exclude(pk=self.pk))
        except ValidationError as error:
            raise ValidationError({"username": error.messages}) from error

    def save(self, *args, **kwargs) -> None:
        """Every user saved with a new or changed name, by any path (actions, admin, sign-on),
        is stored in NFKC form and refused when it matches or looks like another user's name."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "username" in update_fields:
            self.username = canonical(self.username)
            self.username_skeleton = skeleton(self.username)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "username_skeleton"}
            if self._state.adding or getattr(self, "_stored_username", None) != self.username:
                check_username(self.username, others=User.objects.exclude(pk=self.pk))
        super().save(*args, **kwargs)
        self._stored_username = self.username

    @cached_property
    def role_names(self) -> frozenset[str]:
        if not self.is_active or not self.pk:
            return frozenset()
        return frozenset(self.groups.values_list("name", flat=True))

    @property
    def roles_sorted(self) -> list[str]:
        return sorted(self.role_names)

    def has_role(self, role: Role | str) -> bool:
        return str(role) in self.role_names

    @property
    def is_investigator(self) -> bool:
        return self.has_role(Role.INVESTIGATOR)

    @property
    def is_reviewer(self) -> bool:
        return bool(self.role_names & REVIEWER_ROLES)

    @property
    def is_senior_reviewer(self) -> bool:
        return self.has_role(Role.SENIOR_LEGAL_REVIEWER)

    @property
    def is_auditor(self) -> bool:
        return self.has_role(Role.AUDITOR)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class SecondFactorReset(models.Model):
    """A reset of a user's second factors (every authenticator app, security key and recovery
    code). For a staff account it is proposed by one staff member and carried out only when
    another confirms it (``accounts.actions.second_factor_reset_confirm``); for anyone else it
    is carried out at once, and this row records who did it."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="second_factor_resets")
    reason = models.TextField()
    proposed_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    confirmed_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-proposed_at"]
        constraints = [
            # One pending proposal per user at a time.
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(done_at__isnull=True), name="one_pending_factor_reset"
            )
        ]

    def __str__(self) -> str:
        state = "done" if self.done_at else "awaiting a second staff member"
        return f"Second-factor reset of {self.user.username} ({state})"

    @property
    def is_pending(self) -> bool:
        return self.done_at is None


class TokenSecondFactor(models.Model):
    """When an API token last passed a second factor: when it was issued with a code (the ``otp``
    of ``POST /api/v1/auth/token/``) or stepped up (``POST /api/v1/auth/step-up/``). Ends with
    the token. A token without one never passes the step-up (``accounts.stepup``)."""

    token = models.OneToOneField(
        "knox.AuthToken", on_delete=models.CASCADE, primary_key=True, related_name="second_factor"
    )
    checked_at = models.DateTimeField()

    @classmethod
    def checked_at_for(cls, token) -> datetime | None:
        return cls.objects.filter(token=token).values_list("checked_at", flat=True).first()
