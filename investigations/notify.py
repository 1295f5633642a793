"""Email notifications, sent only once the change that causes them has committed."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from accounts.models import User
from accounts.roles import REVIEWER_ROLES, Role


def site_url(path: str) -> str:
    """An absolute link for an e-mail: ``SITE_URL`` plus an in-app path."""
    return settings.SITE_URL + path


def send_on_commit(name: str, recipients: Iterable[str], context: dict) -> None:
    """Render ``emails/<name>-subject.txt`` / ``-body.txt`` and send after commit (never on rollback)."""
    recipients = sorted({address for address in recipients if address})
    if not recipients:
        return
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
    body = render_to_string(f"emails/{name}-body.txt", context)

    def _send() -> None:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True)

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
