"""Queued e-mail (``investigations.notify``): stored with the change that causes it, sent by a
worker, retried, given up on, never sent from a web request.

The mail servers here are real sockets on 127.0.0.1: one that refuses connections, one that
accepts them and never answers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connections, transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from custos_testing.worker import purge_broker, sent_on_the_broker
from investigations import actions, enqueue, notify
from investigations.models import OutgoingMail
from investigations.tasks import deliver_mail as deliver_mail_task

from .fixtures import file_request
from .test_query_gateway import held_by_another_transaction

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

SMTP = "django.core.mail.backends.smtp.EmailBackend"


@contextmanager
def refusing_mail_server() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens: every connection is refused."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=port):
        yield port


@contextmanager
def silent_mail_server(timeout: int) -> Iterator[socket.socket]:
    """A server that accepts connections (the kernel completes them) and never says a word."""
    with closing(socket.socket()) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        port = server.getsockname()[1]
        with override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, EMAIL_TIMEOUT=timeout):
            yield server


def contacted(server: socket.socket) -> bool:
    """Did anyone connect to ``server`` since it started listening?"""
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def pending() -> list[OutgoingMail]:
    return list(OutgoingMail.objects.pending())


def make_due(*mails: OutgoingMail) -> None:
    """As if the retry's wait (or a lease) had passed."""
    OutgoingMail.objects.filter(pk__in=[m.pk for m in mails]).update(due_at=timezone.now() - timedelta(seconds=1))


def test_a_change_that_rolls_back_queues_nothing(draft_request, lead):
    with pytest.raises(RuntimeError), transaction.atomic():
        actions.request_submit(actor=lead, request=draft_request)
        assert OutgoingMail.objects.count() == 1  # queued in the change's transaction
        raise RuntimeError("the change fails after the mail was queued")
    assert not OutgoingMail.objects.exists()
    assert notify.deliver_due() == notify.Delivery() and not mail.outbox


def test_queued_mail_is_sent_once_by_the_worker(draft_request, lead, reviewer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        actions.request_submit(actor=lead, request=draft_request)
    [queued] = pending()
    assert not mail.outbox  # the commit rang the worker; nothing was sent in the change
    assert (queued.template, queued.attempts, queued.sent_at) == ("request-submitted", 0, None)
    assert reviewer.email in queued.recipients and "awaits a decision" in queued.subject
    assert notify.deliver_due() == notify.Delivery(sent=1)
    [message] = mail.outbox
    assert (message.subject, message.body, message.to) == (queued.subject, queued.body, queued.recipients)
    queued.refresh_from_db()
    assert queued.state == "sent" and queued.attempts == 1 and not pending()
    assert notify.deliver_due() == notify.Delivery() and len(mail.outbox) == 1  # never twice


# --- the doorbell: one publish per quiet window, and the rung delivery runs again after it -----


def test_a_burst_of_commits_that_queue_mail_publishes_one_ring(
    open_case, lead, reviewer, store, settings, django_capture_on_commit_callbacks
):
    settings.CUSTOS = {**settings.CUSTOS, "MAIL_DOORBELL_MS": 60_000}  # far longer than the burst takes
    purge_broker()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            actions.request_submit(actor=lead, request=file_request(open_case, lead))
    assert len(pending()) == 3
    assert sent_on_the_broker(enqueue.DELIVER_MAIL) == [([60_000], False)]


def test_without_a_window_every_commit_rings(
    open_case, lead, reviewer, store, settings, django_capture_on_commit_callbacks
):
    settings.CUSTOS = {**settings.CUSTOS, "MAIL_DOORBELL_MS": 0}
    purge_broker()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            actions.request_submit(actor=lead, request=file_request(open_case, lead))
    assert sent_on_the_broker(enqueue.DELIVER_MAIL) == [([0], False), ([0], False)]


def test_the_rung_delivery_runs_again_after_the_window_and_beats_does_not(draft_request, lead):
    purge_broker()
    with transaction.atomic():
        actions.request_submit(actor=lead, request=draft_request)
    purge_broker()  # the submission's own rings
    assert deliver_mail_task(1500) == {"sent": 1, "retrying": 0, "failed": 0}
    assert sent_on_the_broker(enqueue.DELIVER_MAIL) == [([], True)]  # once more, after the window
    assert deliver_mail_task() == {"sent": 0, "retrying": 0, "failed": 0}
    assert sent_on_the_broker(enqueue.DELIVER_MAIL) == []


def test_the_decision_page_never_talks_to_the_mail_server(submitted_request, reviewer, client, deliver_mail):
    """A mail server that hangs holds a worker (for EMAIL_TIMEOUT), never the reviewer's request."""
    deliver_mail()  # the submission's mail, sent before the server goes silent
    with silent_mail_server(timeout=1) as server:
        client.force_login(reviewer)
        url = reverse("investigations:request_decide", args=[submitted_request.pk])
        response = client.post(url, {"outcome": "reject", "reason": "No basis for this."})
        assert response.status_code == 302
        [queued] = pending()
        assert queued.template == "request-decided" and queued.attempts == 0
        assert not contacted(server), "the web request connected to the mail server"
        assert notify.deliver_due() == notify.Delivery(retrying=1)  # the worker waits at most EMAIL_TIMEOUT
        assert contacted(server)
    queued.refresh_from_db()
    assert queued.attempts == 1 and queued.state == "pending" and "timed out" in queued.last_error.lower()
    assert queued.due_at > timezone.now() + timedelta(seconds=50)  # retried a minute later


def test_a_refusing_mail_server_is_retried_later_then_given_up(
    submitted_request, reviewer, lead, settings, deliver_mail
):
    deliver_mail()
    mail.outbox.clear()
    settings.CUSTOS = {**settings.CUSTOS, "MAIL_ATTEMPTS": 3}
    actions.request_decide(actor=reviewer, request=submitted_request, outcome="reject", reason="No basis for this.")
    [queued] = pending()
    with refusing_mail_server():
        assert notify.deliver_due() == notify.Delivery(retrying=1)
        assert notify.deliver_due() == notify.Delivery()  # not due before its retry time
        queued.refresh_from_db()
        assert queued.attempts == 1 and "refused" in queued.last_error.lower()
        waited = queued.due_at - timezone.now()
        assert timedelta(seconds=50) < waited <= timedelta(minutes=1)
        [probe] = notify.health_probes()
        assert probe["state"] == "retrying" and not probe["failing"] and "refused" in probe["detail"].lower()
        make_due(queued)
        assert notify.deliver_due() == notify.Delivery(retrying=1)
        queued.refresh_from_db()
        assert queued.due_at - timezone.now() > timedelta(minutes=1, seconds=50)  # then two minutes
        make_due(queued)
        assert notify.deliver_due() == notify.Delivery(failed=1)
    queued.refresh_from_db()
    assert queued.state == "failed" and queued.attempts == 3
    [probe] = notify.health_probes()
    assert probe["failing"] and "1 given up on" in probe["detail"]
    make_due(queued)
    assert notify.deliver_due() == notify.Delivery() and not mail.outbox  # given up: never sent


def test_retries_wait_longer_each_time_up_to_an_hour():
    waits = [notify.retry_after(attempt) for attempt in range(1, 10)]
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60, 60)]


def test_a_mail_claimed_by_a_worker_that_died_is_sent_when_its_lease_ends(draft_request, lead):
    actions.request_submit(actor=lead, request=draft_request)
    [claimed] = notify._claim_due(notify.MAIL_BATCH)  # the worker dies before sending
    assert notify.health_probes()[0]["state"] == "ok"  # being sent is not retrying
    assert notify.deliver_due() == notify.Delivery()  # leased: no other worker sends it meanwhile
    make_due(claimed)
    assert notify.deliver_due() == notify.Delivery(sent=1) and len(mail.outbox) == 1
    claimed.refresh_from_db()
    assert claimed.attempts == 2 and claimed.state == "sent"


@pytest.mark.django_db(transaction=True, databases=["default", "userdata"])
@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="row locks: PostgreSQL")
def test_two_workers_at_once_send_different_mails(open_case, lead, reviewer, store):
    for _ in range(3):
        actions.request_submit(actor=lead, request=file_request(open_case, lead))
    first, *others = pending()
    held = OutgoingMail.objects.filter(pk=first.pk).select_for_update()
    with held_by_another_transaction(lambda: list(held)):  # another worker is claiming the first
        assert notify.deliver_due() == notify.Delivery(sent=2)
    assert {tuple(message.to) for message in mail.outbox} == {tuple(m.recipients) for m in others}
    assert [m.pk for m in pending()] == [first.pk]


def test_sent_and_given_up_mails_are_deleted_after_the_keeping_days(draft_request, lead, settings):
    actions.request_submit(actor=lead, request=draft_request)
    notify.deliver_due()
    [sent] = OutgoingMail.objects.all()
    days = settings.CUSTOS["MAIL_KEEP_DAYS"]
    old = timezone.now() - timedelta(days=days, minutes=1)
    given_up = OutgoingMail.objects.create(template="t", subject="s", body="b", recipients=["a@example.org"],
                                           failed_at=old)
    waiting = OutgoingMail.objects.create(template="t", subject="s", body="b", recipients=["a@example.org"],
                                          due_at=timezone.now() + timedelta(hours=1))
    OutgoingMail.objects.filter(pk=waiting.pk).update(created_at=old)
    notify.deliver_due()
    assert set(OutgoingMail.objects.values_list("pk", flat=True)) == {sent.pk, waiting.pk}  # sent just now
    OutgoingMail.objects.filter(pk=sent.pk).update(sent_at=old)
    notify.deliver_due()
    assert list(OutgoingMail.objects.values_list("pk", flat=True)) == [waiting.pk]  # pending is never deleted
    assert given_up.pk not in OutgoingMail.objects.values_list("pk", flat=True)


def test_mail_waiting_too_long_makes_the_health_page_say_failing(draft_request, lead, login, admin_user):
    assert notify.health_probes()[0]["state"] == "ok"
    actions.request_submit(actor=lead, request=draft_request)
    [probe] = notify.health_probes()
    assert probe["state"] == "ok" and "1 waiting" in probe["detail"]
    OutgoingMail.objects.update(created_at=timezone.now() - notify.MAIL_LATE)  # no worker sent it
    [probe] = notify.health_probes()
    assert probe["failing"] and probe["since"] is not None
    page = login(admin_user).get(reverse("operations:schedules")).content.decode()
    assert "outgoing mail" in page and "1 waiting" in page


def test_a_recipient_without_an_address_queues_nothing(lead):
    assert notify.queue("task-assigned", ["", ""], {}) == []
    assert not OutgoingMail.objects.exists()
