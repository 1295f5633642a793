from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.db import connection, models
from django.db.models.functions import Now
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .case import TEXT_MAX, Case, CaseStatus
from .request import DataPullRequest

FROZEN_FIELDS = (
    "request_id",
    "case_id",
    "subjects",
    "categories",
    "window_start",
    "window_end",
    "starts_at",
    "expires_at",
)


class GrantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


def db_now() -> datetime:
    """The database clock. Expiry is decided by it, never by the app server's clock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # SQLite answers text in UTC
        from django.utils.dateparse import parse_datetime

        value = parse_datetime(value.replace(" ", "T") + "+00:00")
    return value


class GrantQuerySet(models.QuerySet["Grant"]):
    def usable(self) -> GrantQuerySet:
        """Grants usable right now by the database clock (status alone is not trusted)."""
        return self.filter(
            status=GrantStatus.ACTIVE,
            revoked_at__isnull=True,
            starts_at__lte=Now(),
            expires_at__gt=Now(),
            case__status=CaseStatus.OPEN,
        )

    def usable_by(self, user) -> GrantQuerySet:
        if not user.is_active:
            return self.none()
        return self.usable().filter(grantees=user)

    def due_for_expiry(self) -> GrantQuerySet:
        return self.filter(status=GrantStatus.ACTIVE, expires_at__lte=Now())


class Grant(models.Model):
    """Permission to query, made when a request is fully approved.

    The scope (subjects, categories, window) is a frozen copy of the approved scope: no
    later edit of the request or decision can change it, and the model refuses to.
    """

    request = models.OneToOneField(DataPullRequest, on_delete=models.PROTECT, related_name="grant")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="grants")
    subjects = models.JSONField()
    categories = models.JSONField()
    window_start = models.DateField()
    window_end = models.DateField()
    grantees = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="grants")
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=16, choices=GrantStatus.choices, default=GrantStatus.ACTIVE)
    expired_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True, max_length=TEXT_MAX)
    warned_24h_at = models.DateTimeField(null=True, blank=True)
    warned_1h_at = models.DateTimeField(null=True, blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-id"]
        permissions = [("query_grant", "Run queries under the grant"), ("revoke_grant", "Revoke the grant")]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            # The grant list's order: a holder of many grants walks it and stops after a page
            # (access.grants_listed_for).
            models.Index(fields=["-starts_at", "-id"], name="grant_newest_first"),
        ]

    def __str__(self) -> str:
        return f"grant {self.pk} on {self.case.reference}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or set(update_fields) & {name.removesuffix("_id") for name in FROZEN_FIELDS}:
                raise ValueError("a grant's scope is frozen; save it only with update_fields outside the scope")
        super().save(*args, **kwargs)

    def is_usable_at(self, at: datetime) -> bool:
        return (
            self.status == GrantStatus.ACTIVE
            and self.revoked_at is None
            and self.starts_at <= at < self.expires_at
            and self.case.is_open
        )

    def is_usable_by(self, user, at: datetime | None = None) -> bool:
        """The single rule: may ``user`` query under this grant at ``at`` (default: the DB clock)?"""
        if not user.is_active:
            return False
        at = at or db_now()
        return self.is_usable_at(at) and self.grantees.filter(pk=user.pk).exists()

    def covers_window(self, start: date, end: date) -> bool:
        return self.window_start <= start <= end <= self.window_end


class GrantUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Grant, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class GrantGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Grant, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass
