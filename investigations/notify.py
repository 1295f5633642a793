"""E-mail notifications: queued with the change that causes them, sent by a worker.

``queue`` renders a mail and stores it (``OutgoingMail``) in the caller's transaction and rings
the ``investigations.deliver_mail`` task once that transaction commits. So a rolled-back change
sends nothing, and the web request that made the change never waits for a mail server (one
that hangs would hold the web worker, one that refuses would lose the mail). ``deliver_due``,
the task's body, sends what is due over one connection per batch, retries a failure after 1, 2,
4 ... 60 minutes and gives up after ``CUSTOS["MAIL_ATTEMPTS"]`` tries; the beat schedule runs it
every minute as well, so a lost doorbell (broker down) only delays a mail.

Delivery is at least once: a mail is claimed for a lease (``MAIL_LEASE``) before it is sent and
marked sent after, so a worker that dies between the mail server's acceptance and the mark
leaves it to be sent again when the lease ends; a mail is never lost to a crash.

Oversight alerts (``actions.oversight.email_alerts``, retried by the scan through
``Alert.emailed_at``) and the failed-verification alert (``audit.alerts``, sent before anything
is written, as the ledger may refuse writes) are sent by workers directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Count, F, Max, Min, Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from accounts.roles import REVIEWER_ROLES, Role

from . import enqueue
from .models import OutgoingMail

logger = logging.getLogger(__name__)

# Mails claimed and sent per connection to the mail server.
MAIL_BATCH = 20
# How long a claimed mail is left to the worker sending it: longer than a batch can take with
# every message running into EMAIL_TIMEOUT.
MAIL_LEASE = timedelta(minutes=10)
# A retry waits 1, 2, 4, 8, 16, 32, then 60 minutes.
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)
# Pending this long, or given up on this recently, and the health page says mail is failing.
MAIL_LATE = timedelta(minutes=15)
MAIL_FAILED_RECENTLY = timedelta(days=1)


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


def queue(name: str, recipients: Iterable[str], context: dict) -> list[OutgoingMail]:
    """Render ``emails/<name>-subject.txt`` / ``-body.txt`` (once per recipients' time zone), store
    the mails in the caller's transaction and ring the delivery task once it commits (nothing
    is sent on rollback). Returns the stored mails (none without a recipient address)."""
    mails = [
        OutgoingMail(template=name, subject=subject, body=body, recipients=addresses)
        for subject, body, addresses in rendered_for(name, recipients, context)
    ]
    if not mails:
        return []
    with transaction.atomic(savepoint=False):
        OutgoingMail.objects.bulk_create(mails)
        transaction.on_commit(ring_delivery)
    return mails


@contextmanager
def discarded() -> Iterator[None]:
    """Mails queued inside are deleted unsent on leaving (seeding demo or load-test data: the same
    notifications are in the app, and nobody reads the seeded addresses)."""
    last = OutgoingMail.objects.aggregate(last=Max("pk"))["last"] or 0
    yield
    OutgoingMail.objects.filter(pk__gt=last).delete()


def ring_delivery() -> None:
    """Ask a worker to send what is due, at most once per ``CUSTOS["MAIL_DOORBELL_MS"]``
    (``enqueue.ring``: the rung delivery runs again after the window, for mails queued while the
    doorbell was quiet), so a burst of writes publishes once, not once per commit. An
    unreachable broker only logs: beat runs the delivery every minute."""
    try:
        enqueue.ring(enqueue.DELIVER_MAIL, quiet_ms=settings.CUSTOS["MAIL_DOORBELL_MS"])
    except Exception:
        logger.warning("could not enqueue mail delivery; the beat schedule will send it", exc_info=True)


@dataclass(frozen=True)
class Delivery:
    """What one ``deliver_due`` run did: mails sent, failed and due again later, given up on."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(self.sent + other.sent, self.retrying + other.retrying, self.failed + other.failed)


def deliver_due(*, batch: int = MAIL_BATCH) -> Delivery:
    """Send every mail that is due, ``batch`` at a time (the body of task ``investigations.deliver_mail``).

    Each batch is claimed in a short transaction (``FOR UPDATE SKIP LOCKED``; the lease moves
    its ``due_at`` on and counts the attempt), sent outside any transaction over one connection
    to the mail server, then marked sent, due again later, or given up on. Two workers at once
    claim different mails. Sent and given-up mails are deleted ``CUSTOS["MAIL_KEEP_DAYS"]``
    days later.
    """
    done = Delivery()
    while mails := _claim_due(batch):
        done += _settle(mails, _send(mails))
    keep = timedelta(days=settings.CUSTOS["MAIL_KEEP_DAYS"])
    cutoff = timezone.now() - keep
    OutgoingMail.objects.filter(Q(sent_at__lt=cutoff) | Q(failed_at__lt=cutoff)).delete()
    return done


def _claim_due(batch: int) -> list[OutgoingMail]:
    with transaction.atomic():
        now = timezone.now()
        due = OutgoingMail.objects.pending().filter(due_at__lte=now).order_by("due_at", "pk")
        ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch])
        if not ids:
            return []
        OutgoingMail.objects.filter(pk__in=ids).update(due_at=now + MAIL_LEASE, attempts=F("attempts") + 1)
        return list(OutgoingMail.objects.filter(pk__in=ids).order_by("pk"))


def _send(mails: list[OutgoingMail]) -> dict[int, str]:
    """Send ``mails`` over one connection; the error of each mail that was not sent."""
    connection = get_connection()
    try:
        connection.open()
    except Exception as error:
        return dict.fromkeys((mail.pk for mail in mails), _describe(error))
    errors = {}
    try:
        for mail in mails:
            message = EmailMessage(
                mail.subject, mail.body, settings.DEFAULT_FROM_EMAIL, mail.recipients, connection=connection
            )
            try:
                message.send()
            except Exception as error:
                errors[mail.pk] = _describe(error)
    finally:
        with suppress(Exception):
            connection.close()
    return errors


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def _settle(mails: list[OutgoingMail], errors: dict[int, str]) -> Delivery:
    now = timezone.now()
    sent = [mail.pk for mail in mails if mail.pk not in errors]
    OutgoingMail.objects.filter(pk__in=sent).update(sent_at=now, last_error="")
    retrying = failed = 0
    for mail in mails:
        if mail.pk not in errors:
            continue
        if mail.attempts >= settings.CUSTOS["MAIL_ATTEMPTS"]:
            logger.error(
                "gave up on mail %s (%s) after %s attempts: %s", mail.pk, mail.template, mail.attempts, errors[mail.pk]
            )
            OutgoingMail.objects.filter(pk=mail.pk).update(failed_at=now, last_error=errors[mail.pk])
            failed += 1
        else:
            logger.warning("mail %s (%s) not sent, retrying: %s", mail.pk, mail.template, errors[mail.pk])
            OutgoingMail.objects.filter(pk=mail.pk).update(
                due_at=now + retry_after(mail.attempts), last_error=errors[mail.pk]
            )
            retrying += 1
    return Delivery(sent=len(sent), retrying=retrying, failed=failed)


def retry_after(attempts: int) -> timedelta:
    """How long a mail that failed its ``attempts``-th try waits: 1, 2, 4 ... minutes, at most an hour."""
    return min(RETRY_FIRST * 2 ** (attempts - 1), RETRY_MAX)


def health_probes() -> list[dict]:
    """One row for the operations page and ``worker_health``: is mail going out?"""
    now = timezone.now()
    waiting = OutgoingMail.objects.pending().aggregate(
        count=Count("pk"), oldest=Min("created_at"), retrying=Count("pk", filter=~Q(last_error=""))
    )
    given_up = OutgoingMail.objects.filter(failed_at__isnull=False).aggregate(count=Count("pk"), last=Max("failed_at"))
    last_error = (
        OutgoingMail.objects.exclude(last_error="")
        .filter(sent_at__isnull=True)
        .order_by("-due_at")
        .values_list("last_error", flat=True)
        .first()
    )
    late = waiting["oldest"] is not None and now - waiting["oldest"] >= MAIL_LATE
    failed_recently = given_up["last"] is not None and now - given_up["last"] < MAIL_FAILED_RECENTLY
    state = "failing" if late or failed_recently else "retrying" if waiting["retrying"] else "ok"
    detail = f"{waiting['count']} waiting, {waiting['retrying']} of them retrying; {given_up['count']} given up on"
    if last_error:
        detail += f"; last error: {last_error}"
    since = waiting["oldest"] if late else given_up["last"] if failed_recently else None
    return [{"name": "outgoing mail", "state": state, "detail": detail, "failing": state == "failing", "since": since}]


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
