"""Email notifications, sent only once the change that causes them has committed."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from accounts.roles import REVIEWER_ROLES, Role


def site_url(path: str) -> str:
    """An absolute link for an e-mail: ``SITE_URL`` plus an in-app path."""
    return settings.SITE_URL + path


def zones_of(addresses: Iterable[str]) -> dict[str, list[str]]:
    """Recipients grouped by the time zone their e-mail is written in: their own (``User.time_zone``);
    the default (UTC) for an address that is no active user's (``OVERSIGHT_EMAILS``)."""
    addresses = sorted({address for address in addresses if address})
    known = dict(User.objects.filter(email__in=addresses, is_active=True).values_list("email", "time_zone"))
    groups: dict[str, list[str]] = {}
    for address in addresses:
        groups.setdefault(known.get(address) or settings.TIME_ZONE, []).append(address)
    return groups


def render_mail(name: str, context: dict, zone: str) -> tuple[str, str]:
    """``emails/<name>-subject.txt`` and ``-body.txt``, their times in ``zone``."""
    with timezone.override(zone):
        subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
        return subject, render_to_string(f"emails/{name}-body.txt", context)


def rendered_for(name: str, recipients: Iterable[str], context: dict) -> list[tuple[str, str, list[str]]]:
    """(subject, body, addresses) per time zone among the recipients."""
    return [(*render_mail(name, context, zone), addresses) for zone, addresses in zones_of(recipients).items()]


def send_on_commit(name: str, recipients: Iterable[str], context: dict) -> None:
    """Render ``emails/<name>-subject.txt`` / ``-body.txt`` (once per recipients' time zone) and send
    after commit (never on rollback)."""
    mails = rendered_for(name, recipients, context)
    if not mails:
        return

    def _send() -> None:
        for subject, body, addresses in mails:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, addresses, fail_silently=True)

    transaction.on_commit(_send)


def reviewers(*, exclude_case=None):
    """Active legal reviewers, without anyone ever involved in the case (who may not decide anyway)."""
    from .models import CaseMembership

    people = User.objects.filter(is_active=True, groups__name__in=REVIEWER_ROLES)
    if exclude_case is not None:
        people = people.exclude(pk__in=CaseMembership.objects.filter(case=exclude_case).values("user"))
    return people.distinct()


def reviewer_addresses(*, exclude_case=None) -> list[str]:
    """Active legal reviewers' addresses, without anyone ever involved in the case (who may not decide anyway)."""
    return list(reviewers(exclude_case=exclude_case).values_list("email", flat=True).distinct())


def auditors():
    return User.objects.filter(is_active=True, groups__name=Role.AUDITOR).distinct()


def oversight_addresses() -> list[str]:
    return [*settings.OVERSIGHT_EMAILS, *auditors().values_list("email", flat=True)]
