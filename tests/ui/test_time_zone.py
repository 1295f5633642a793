"""Per-user time zone: a setting on the user's own page (UTC by default), every date-time in pages
and e-mails in it, in one format, named in the footer."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.actions import user_update
from audit.events import Action
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

TEMPLATES = Path(settings.BASE_DIR) / "templates"
ALLOWED_FORMATS = {"DATETIME_FORMAT", "DATE_FORMAT", "c", "Y-m-d"}  # ISO, for URLs and attributes


def test_a_new_user_reads_utc_and_the_footer_says_so(lead, client):
    client.force_login(lead)
    html = client.get(reverse("home")).content.decode()
    assert lead.time_zone == "UTC"
    assert f'times in <a href="{reverse("accounts:settings")}">UTC</a>' in html


def test_the_settings_page_sets_the_time_zone_on_the_ledger(lead, client):
    client.force_login(lead)
    response = client.post(reverse("accounts:settings"), {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.time_zone == "Asia/Tokyo"
    event = AuditEvent.objects.filter(action=Action.USER_UPDATED, target_id=str(lead.pk)).latest("seq")
    assert event.details["changes"] == {"time_zone": ["UTC", "Asia/Tokyo"]}
    assert (
        f'times in <a href="{reverse("accounts:settings")}">Asia/Tokyo</a>'
        in client.get(reverse("home")).content.decode()
    )


def test_an_unknown_time_zone_is_a_field_error_and_changes_nothing(lead, client):
    client.force_login(lead)
    before = AuditEvent.objects.count()
    response = client.post(reverse("accounts:settings"), {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 200
    assert 'id="id_time_zone_error"' in response.content.decode()
    lead.refresh_from_db()
    assert lead.time_zone == "UTC" and AuditEvent.objects.count() == before


def test_pages_show_times_in_the_readers_zone(active_grant, lead, client):
    user_update(actor=lead, user=lead, time_zone="America/New_York")
    client.force_login(lead)
    html = client.get(reverse("investigations:grant_detail", args=[active_grant.pk])).content.decode()
    in_new_york = timezone.localtime(active_grant.expires_at, ZoneInfo("America/New_York"))
    in_utc = timezone.localtime(active_grant.expires_at, ZoneInfo("UTC"))
    assert f"{in_new_york:%Y-%m-%d %H:%M}" in html
    assert f"{in_utc:%Y-%m-%d %H:%M}" not in html


def test_emails_show_times_in_each_recipients_zone(
    active_grant, lead, django_capture_on_commit_callbacks, deliver_mail
):
    from investigations.actions import lifecycle
    from investigations.models import Grant

    user_update(actor=lead, user=lead, time_zone="Asia/Kolkata")
    expires = timezone.now() + timedelta(minutes=30)
    Grant.objects.filter(pk=active_grant.pk).update(expires_at=expires)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.grants_warn_expiring()
    warnings = [message for message in deliver_mail() if "ends within" in message.subject]
    bodies = [message.body for message in warnings if lead.email in message.to]
    assert bodies
    local = timezone.localtime(expires, ZoneInfo("Asia/Kolkata"))
    assert all(f"{local:%Y-%m-%d %H:%M} Asia/Kolkata" in body for body in bodies)


def test_every_template_uses_the_one_date_time_format():
    """Dates and times go through DATETIME_FORMAT / DATE_FORMAT (config/formats), never a literal
    format; the exceptions: a time shown as recorded, in UTC (``|utc|date:...``), and ISO dates in
    URLs and attributes."""
    offenders = []
    for path in TEMPLATES.rglob("*.*"):
        text, name = path.read_text(), path.relative_to(TEMPLATES)
        for match in re.finditer(r"(\|utc)?\|date:[\"']([^\"']*)[\"']", text):
            if match.group(2) not in ALLOWED_FORMATS and not match.group(1):
                offenders.append(f"{name}: {match.group(0)}")
        if '{% timezone "UTC" %}' not in text:  # a record kept as produced is rendered in UTC and says so
            offenders += [f"{name}: UTC after a date" for _ in re.finditer(r"_FORMAT\" }} UTC", text)]
    assert not offenders, offenders


def test_the_auditors_today_is_their_own_day_and_its_link_agrees(auditor, client):
    user_update(actor=auditor, user=auditor, time_zone="Pacific/Kiritimati")  # UTC+14: "today" differs most
    client.force_login(auditor)
    start = client.get(reverse("home")).context["auditor"]
    today_there = timezone.localtime(timezone.now(), ZoneInfo("Pacific/Kiritimati")).date()
    assert start.since.date() == today_there and start.since.utcoffset() == timedelta(hours=14)
    listed = client.get(reverse("audit:event_list"), {"date_from": f"{start.since:%Y-%m-%d}"}).context["matching"]
    assert listed == AuditEvent.objects.filter(occurred_at__gte=start.since).count()
