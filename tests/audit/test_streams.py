"""The ledger streamed out: real TLS syslog and HTTPS webhook receivers on 127.0.0.1.

Every event arrives, in ledger order, and a receiver can check each one's hash; a failure keeps
the cursor (nothing dropped) and backs off; a long failure, a pause, a deletion or a change of
address or filter is on the ledger and raises an oversight alert; staff changes in the admin
are recorded and the secret never shows.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

import audit
from audit import streams
from audit.events import Action
from audit.ledger import PAYLOAD_FIELDS, chain_hash, payload_digest
from audit.models import AuditEvent, StreamDestination
from custos_testing.worker import CeleryWorker, wait_for
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind

from .stream_receivers import SyslogReceiver, WebhookReceiver, make_certificates

SECRET = "s" * 40


@pytest.fixture
def certificates(tmp_path):
    return make_certificates(tmp_path / "tls")


@pytest.fixture
def stream_settings(settings):
    settings.AUDIT_STREAM = {**settings.AUDIT_STREAM, "BATCH": 500, "TIMEOUT_SECONDS": 5, "DESTINATIONS": []}
    return settings


@pytest.fixture
def webhook(certificates):
    with WebhookReceiver(certificates, SECRET) as receiver:
        yield receiver


@pytest.fixture
def syslog(certificates):
    with SyslogReceiver(certificates) as receiver:
        yield receiver


def note_events(count: int, start: int = 0) -> list[AuditEvent]:
    return [
        audit.record(action=Action.CASE_NOTE_ADDED, case_reference="INV-2026-0001", details={"n": n, "text": "é"})
        for n in range(start, start + count)
    ]


def ledger_seqs(**filters) -> list[int]:
    return list(AuditEvent.objects.filter(**filters).order_by("seq").values_list("seq", flat=True))


def checks_out(document: dict) -> bool:
    """What a receiver does with an event: recompute its hash from the fields it was sent."""
    digest = payload_digest([document[name] for name in PAYLOAD_FIELDS])
    return chain_hash(document["prev_hash"], document["seq"], document["occurred_at"], digest) == document["hash"]


def add_webhook(webhook, certificates, **extra) -> StreamDestination:
    fields = {"kind": "webhook", "url": webhook.url, "secret": SECRET, "ca_file": str(certificates.ca_file)}
    return streams.destination_create(actor=None, name=extra.pop("name", "siem-hook"), **{**fields, **extra})


def add_syslog(syslog, certificates, **extra) -> StreamDestination:
    fields = {"kind": "syslog", "url": syslog.url, "ca_file": str(certificates.ca_file)}
    return streams.destination_create(actor=None, name=extra.pop("name", "siem-syslog"), **{**fields, **extra})


def deliver_all(destination: StreamDestination) -> None:
    for _ in range(50):
        delivery = streams.deliver(destination.pk)
        if not delivery.more:
            return
    raise AssertionError("delivery never caught up")


def make_due(destination: StreamDestination) -> None:
    """Skip the back-off wait (the test's clock does not move)."""
    StreamDestination.objects.filter(pk=destination.pk).update(next_attempt_at=None)


# --- webhook -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_receives_every_event_in_order_signed_and_checkable(stream_settings, webhook, certificates):
    note_events(12)
    destination = add_webhook(webhook, certificates)
    deliver_all(destination)
    destination.refresh_from_db()
    assert webhook.received.seqs() == ledger_seqs(seq__lte=destination.cursor)
    assert destination.cursor >= 13  # the 12 notes and the stream.created event
    assert all(checks_out(event) for event in webhook.received.events)
    assert webhook.rejected == []
    assert destination.last_success_at is not None and destination.failures == 0


@pytest.mark.django_db
def test_webhook_signature_is_checked_by_the_receiver(stream_settings, webhook, certificates):
    note_events(2)
    destination = add_webhook(webhook, certificates)
    webhook.secret = "another-secret-" * 3  # the receiver expects a different key
    with pytest.raises(streams.DeliveryFailed, match="401"):
        streams.deliver(destination.pk)
    destination.refresh_from_db()
    assert webhook.rejected == ["bad signature"] and destination.cursor == 0


@pytest.mark.django_db
def test_filter_sends_only_matching_events_but_moves_past_the_rest(stream_settings, webhook, certificates):
    note_events(3)
    audit.record(action=Action.GRANT_REVOKED, target=("investigations.grant", 7), details={"reason": "done"})
    destination = add_webhook(webhook, certificates, action_prefixes=["grant.", "stream.created"])
    deliver_all(destination)
    destination.refresh_from_db()
    assert [event["action"] for event in webhook.received.events] == ["grant.revoked", "stream.created"]
    assert destination.cursor == AuditEvent.objects.order_by("-seq").first().seq


@pytest.mark.django_db
def test_a_failing_receiver_keeps_the_cursor_backs_off_and_gets_everything_later(
    stream_settings, webhook, certificates
):
    note_events(5)
    destination = add_webhook(webhook, certificates)
    webhook.fail_with = 503
    with pytest.raises(streams.DeliveryFailed, match="503"):
        streams.deliver(destination.pk)
    destination.refresh_from_db()
    assert destination.cursor == 0 and destination.failures == 1
    assert destination.next_attempt_at >= timezone.now() + timedelta(seconds=4)  # never "retry in 0 s"
    assert streams.deliver(destination.pk).state == "busy"  # backing off: not even tried
    assert webhook.received.events == []

    webhook.fail_with = None
    note_events(2, start=5)
    make_due(destination)
    deliver_all(destination)
    destination.refresh_from_db()
    assert webhook.received.seqs() == ledger_seqs(seq__lte=destination.cursor)
    assert destination.failures == 0 and destination.failing_since is None and destination.last_error == ""


@pytest.mark.django_db
def test_receiver_stopped_then_started_again_loses_nothing(stream_settings, webhook, certificates):
    note_events(4)
    destination = add_webhook(webhook, certificates)
    webhook.stop()
    with pytest.raises(streams.DeliveryFailed):
        streams.deliver(destination.pk)
    note_events(3, start=4)
    webhook.start()
    make_due(destination)
    deliver_all(destination)
    destination.refresh_from_db()
    assert webhook.received.seqs() == ledger_seqs(seq__lte=destination.cursor) == ledger_seqs()[: len(ledger_seqs())]


@pytest.mark.django_db
def test_a_redirect_is_not_an_acknowledgement(stream_settings, webhook, certificates):
    note_events(1)
    destination = add_webhook(webhook, certificates)
    webhook.fail_with = 307
    with pytest.raises(streams.DeliveryFailed):
        streams.deliver(destination.pk)
    assert StreamDestination.objects.get(pk=destination.pk).cursor == 0


@pytest.mark.django_db
def test_an_untrusted_certificate_is_refused(stream_settings, webhook, certificates):
    note_events(1)
    destination = add_webhook(webhook, certificates, ca_file="")  # the system store does not know the test CA
    with pytest.raises(streams.DeliveryFailed, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        streams.deliver(destination.pk)
    assert webhook.received.events == []


# --- syslog --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_syslog_over_tls_sends_rfc5424_octet_counted_messages(stream_settings, syslog, certificates):
    note_events(6)
    destination = add_syslog(syslog, certificates)
    deliver_all(destination)
    destination.refresh_from_db()
    received = syslog.received.events
    assert [event["seq"] for event in received] == ledger_seqs(seq__lte=destination.cursor)
    assert all(checks_out(event) for event in received)
    assert {event["_pri"] for event in received} == {13 * 8 + 5}
    assert received[0]["details"]["text"] == "é"


@pytest.mark.django_db
def test_syslog_receiver_breaking_off_mid_batch_gets_the_batch_again(stream_settings, syslog, certificates):
    note_events(8)
    destination = add_syslog(syslog, certificates)
    syslog.break_after = 3
    with pytest.raises(streams.DeliveryFailed):
        streams.deliver(destination.pk)
    assert StreamDestination.objects.get(pk=destination.pk).cursor == 0
    make_due(destination)
    deliver_all(destination)
    seqs = syslog.received.seqs()
    expected = ledger_seqs(seq__lte=StreamDestination.objects.get(pk=destination.pk).cursor)
    assert sorted(set(seqs)) == expected  # everything arrived
    assert seqs[3:] == expected  # the whole batch again, in order, after the 3 read before the break
    assert seqs[:3] == expected[:3]  # duplicates only as the same sequence numbers


# --- failure alerts, changes, validation ----------------------------------------------------


@pytest.mark.django_db
def test_a_long_failure_is_recorded_once_alerted_and_its_recovery_recorded(stream_settings, webhook, certificates):
    stream_settings.AUDIT_STREAM = {**stream_settings.AUDIT_STREAM, "ALERT_AFTER_MINUTES": 0}
    destination = add_webhook(webhook, certificates)
    webhook.fail_with = 500
    for _ in range(3):
        make_due(destination)
        with pytest.raises(streams.DeliveryFailed):
            streams.deliver(destination.pk)
    assert AuditEvent.objects.filter(action=Action.STREAM_FAILING).count() == 1  # once per outage
    assert streams.state(StreamDestination.objects.get(pk=destination.pk)) == "failing"
    alerts_scan()
    alert = Alert.objects.get(kind=AlertKind.STREAM_FAILING)
    assert alert.severity == "critical" and "siem-hook" in alert.summary

    webhook.fail_with = None
    make_due(destination)
    deliver_all(destination)
    assert AuditEvent.objects.filter(action=Action.STREAM_RECOVERED).count() == 1


@pytest.mark.django_db
def test_every_change_is_recorded_and_silencing_ones_alert(stream_settings, webhook, certificates, admin_user):
    destination = add_webhook(webhook, certificates)
    destination = streams.destination_update(actor=admin_user, destination=destination, secret="n" * 40)
    destination = streams.destination_update(actor=admin_user, destination=destination, action_prefixes=["query."])
    destination = streams.destination_pause(actor=admin_user, destination=destination, reason="maintenance")
    destination = streams.destination_resume(actor=admin_user, destination=destination)
    streams.destination_delete(actor=admin_user, destination=destination, reason="moving to another SIEM")
    actions = list(AuditEvent.objects.filter(action__startswith="stream.").values_list("action", flat=True))
    assert actions == [
        "stream.created",
        "stream.changed",
        "stream.changed",
        "stream.paused",
        "stream.resumed",
        "stream.deleted",
    ]
    assert not AuditEvent.objects.filter(details__icontains="n" * 40).exists()
    assert not AuditEvent.objects.filter(details__icontains=SECRET).exists()
    alerts_scan()
    summaries = sorted(Alert.objects.filter(kind=AlertKind.STREAM_SILENCED).values_list("summary", flat=True))
    assert len(summaries) == 3  # the filter change, the pause, the deletion; not the secret rotation
    assert any("paused" in summary and "maintenance" in summary for summary in summaries)
    assert any("deleted" in summary for summary in summaries)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "webhook", "url": "http://siem.example.org/hook", "secret": SECRET}, "url"),
        ({"kind": "webhook", "url": "https://siem.example.org/hook", "secret": "short"}, "secret"),
        ({"kind": "syslog", "url": "tcp://siem.example.org:514"}, "url"),
        ({"kind": "syslog", "url": "tls://siem.example.org"}, "url"),
        ({"kind": "syslog", "url": "tls://siem.example.org:6514", "action_prefixes": ["nothing."]}, "action_prefixes"),
        ({"kind": "carrier-pigeon", "url": "tls://siem.example.org:6514"}, "kind"),
    ],
)
def test_bad_destinations_are_refused_by_field_and_change_nothing(stream_settings, fields, field):
    with pytest.raises(ValidationError) as refused:
        streams.destination_create(actor=None, name="bad", **fields)
    assert field in refused.value.message_dict
    assert not StreamDestination.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.STREAM_CREATED).exists()


@pytest.mark.django_db
def test_destinations_from_the_environment_are_created_and_a_removed_one_paused(
    stream_settings, certificates, monkeypatch
):
    monkeypatch.setenv("TEST_STREAM_SECRET", SECRET)
    entry = {"name": "env-hook", "kind": "webhook", "url": "https://127.0.0.1:9/x", "secret_env": "TEST_STREAM_SECRET"}
    broken = {"name": "broken", "kind": "webhook", "url": "http://plain.example.org/x", "secret": SECRET}
    stream_settings.AUDIT_STREAM = {**stream_settings.AUDIT_STREAM, "DESTINATIONS": [broken, entry]}
    streams.sync_environment()  # the bad entry is logged and skipped; the good one still applies
    streams.sync_environment()  # unchanged: nothing more recorded
    destination = StreamDestination.objects.get(name="env-hook")
    assert destination.from_environment and destination.secret == SECRET
    assert not StreamDestination.objects.filter(name="broken").exists()
    assert AuditEvent.objects.filter(action=Action.STREAM_CREATED).count() == 1

    stream_settings.AUDIT_STREAM = {**stream_settings.AUDIT_STREAM, "DESTINATIONS": []}
    streams.sync_environment()
    assert StreamDestination.objects.get(name="env-hook").paused
    event = AuditEvent.objects.get(action=Action.STREAM_PAUSED)
    assert event.details["reason"] == "removed from AUDIT_STREAMS"


# --- operations: the page, worker_health, the admin -------------------------------------------


@pytest.mark.django_db
def test_worker_health_and_the_schedules_page_show_a_failing_stream(
    stream_settings, webhook, certificates, client, admin_user
):
    stream_settings.AUDIT_STREAM = {**stream_settings.AUDIT_STREAM, "ALERT_AFTER_MINUTES": 0}
    note_events(3)
    destination = add_webhook(webhook, certificates)
    webhook.fail_with = 502
    with pytest.raises(streams.DeliveryFailed):
        streams.deliver(destination.pk)
    output = io.StringIO()
    with pytest.raises(CommandError, match="ledger stream siem-hook"):
        call_command("worker_health", stdout=output)
    head = AuditEvent.objects.order_by("-seq").first().seq
    assert f"ledger stream siem-hook  FAILING  cursor 0 of {head}, backlog {head}" in output.getvalue()
    client.force_login(admin_user)
    page = client.get("/operations/schedules/").content.decode()
    assert "ledger stream siem-hook" in page and "FAILING" in page
    assert re.search(r"cursor 0 of \d+, backlog \d+; last error: webhook answered 502", page)


@pytest.mark.django_db
def test_staff_add_a_destination_in_the_admin_recorded_and_the_secret_never_shown(
    stream_settings, client, admin_user, auditor
):
    client.force_login(auditor)
    assert client.get("/admin/audit/streamdestination/add/").status_code in (302, 403)
    client.force_login(admin_user)
    response = client.post(
        "/admin/audit/streamdestination/add/",
        {"name": "siem", "kind": "webhook", "url": "https://siem.example.org/hook", "secret": SECRET,
         "ca_file": "", "action_prefixes": "request., grant."},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    destination = StreamDestination.objects.get(name="siem")
    assert destination.action_prefixes == ["grant.", "request."]
    created = AuditEvent.objects.get(action=Action.STREAM_CREATED)
    assert created.actor_id == admin_user.pk and SECRET not in str(created.details)
    page = client.get(f"/admin/audit/streamdestination/{destination.pk}/change/").content.decode()
    assert SECRET not in page

    response = client.post(
        f"/admin/audit/streamdestination/{destination.pk}/change/",
        {"kind": "webhook", "url": "https://siem.example.org/hook", "secret": "", "ca_file": "",
         "action_prefixes": "request., grant.", "paused": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    destination.refresh_from_db()
    assert destination.paused and destination.secret == SECRET  # blank kept the secret
    assert AuditEvent.objects.filter(action=Action.STREAM_PAUSED, actor_id=admin_user.pk).exists()

    response = client.post(
        "/admin/audit/streamdestination/add/",
        {"name": "bad", "kind": "webhook", "url": "http://siem.example.org/hook", "secret": SECRET},
    )
    assert response.status_code == 200 and "https://" in response.content.decode()
    assert not StreamDestination.objects.filter(name="bad").exists()


# --- a real worker, killed mid-batch; the receiver stopped and started again -----------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_and_receiver_restarted_every_event_arrives_in_order(
    stream_settings, certificates, tmp_path
):
    receiver = WebhookReceiver(certificates, SECRET)
    receiver.start()
    receiver.delay = 3  # a slow acknowledgement: the worker is killed while it waits for it
    note_events(25)
    destination = add_webhook(receiver, certificates)
    env = {
        "CUSTOS_TEST_BEAT": "dispatch-streams=1",
        "AUDIT_STREAM_LEASE_SECONDS": "3",
        "AUDIT_STREAM_BATCH": "10",
        "AUDIT_STREAM_TIMEOUT_SECONDS": "6",
    }
    first = CeleryWorker(log_path=tmp_path / "first.log", beat=True, env=env)
    second = CeleryWorker(log_path=tmp_path / "second.log", beat=True, env=env)
    try:
        first.start()
        wait_for(receiver.requests_seen.is_set, "the first batch", first)
        first.kill_hard()  # mid-batch: sent, not yet acknowledged
        receiver.stop()
        assert StreamDestination.objects.get(pk=destination.pk).cursor == 0
        note_events(7, start=25)
        receiver.delay = 0
        receiver.start()
        second.start()
        head = AuditEvent.objects.order_by("-seq").first().seq
        wait_for(
            lambda: StreamDestination.objects.get(pk=destination.pk).cursor >= head,
            "delivery of the whole ledger",
            first,
            second,
        )
    finally:
        first.stop()
        second.stop()
        receiver.stop()
    seqs = receiver.received.seqs()
    expected = ledger_seqs(seq__lte=head)
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == expected  # every event, in ledger order
    documents = {}
    for event in receiver.received.events:  # a duplicate is the same event again, never another one
        assert documents.setdefault(event["seq"], event) == event
