"""Changing the periodic schedule in the admin is recorded, by staff and superusers alike."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.models import User
from audit.events import Action
from audit.models import AuditEvent
from tests.investigations.matrix import events_since, ledger_mark

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule_manager(admin_user) -> User:
    """Staff with every model permission on django-celery-beat's rows."""
    admin_user.user_permissions.add(*Permission.objects.filter(content_type__app_label="django_celery_beat"))
    return User.objects.get(pk=admin_user.pk)


@pytest.fixture(params=["schedule_manager", "superuser"])
def admin_client(request, client):
    persona = request.getfixturevalue(request.param)
    client.force_login(persona)
    return client, persona


@pytest.fixture
def expire_grants() -> PeriodicTask:
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    return PeriodicTask.objects.create(name="expire-grants", task="investigations.expire_grants", interval=every_minute)


def _changed(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=mark, action=Action.SCHEDULE_CHANGED).order_by("seq"))


@pytest.mark.parametrize("action", ["disable_tasks", "toggle_tasks"])
def test_disabling_a_task_is_recorded(admin_client, expire_grants, action):
    client, persona = admin_client
    mark = ledger_mark()
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": action, "_selected_action": [expire_grants.pk]},
    )
    assert response.status_code == 302
    expire_grants.refresh_from_db()
    assert not expire_grants.enabled
    [event] = _changed(mark)
    assert event.actor_id == persona.pk
    assert event.details == {
        "entry": "expire-grants",
        "model": "django_celery_beat.periodictask",
        "change": "disabled",
        "fields": {"enabled": ["True", "False"]},
    }
    assert events_since(mark) == [Action.SCHEDULE_CHANGED]


def test_enabling_a_task_is_recorded(admin_client, expire_grants):
    client, _ = admin_client
    PeriodicTask.objects.filter(pk=expire_grants.pk).update(enabled=False)
    mark = ledger_mark()
    client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "enable_tasks", "_selected_action": [expire_grants.pk]},
    )
    expire_grants.refresh_from_db()
    assert expire_grants.enabled
    assert [event.details["change"] for event in _changed(mark)] == ["enabled"]


def test_editing_a_task_in_its_form_is_recorded_field_by_field(admin_client, expire_grants):
    client, persona = admin_client
    every_month = IntervalSchedule.objects.create(every=30, period=IntervalSchedule.DAYS)
    mark = ledger_mark()
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_change", args=[expire_grants.pk]),
        {
            "name": "expire-grants",
            "regtask": "investigations.expire_grants",
            "task": "",
            "interval": every_month.pk,
            "args": "[]",
            "kwargs": "{}",
            "headers": "{}",
            "enabled": "",  # unticked in the same form
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    expire_grants.refresh_from_db()
    assert expire_grants.interval_id == every_month.pk and not expire_grants.enabled
    [event] = _changed(mark)
    assert event.actor_id == persona.pk and event.details["change"] == "edited"
    assert event.details["fields"]["enabled"] == ["True", "False"]
    assert event.details["fields"]["interval"] == ["every minute", "every 30 days"]


def test_editing_a_schedule_shared_by_tasks_is_recorded(admin_client, expire_grants):
    client, _ = admin_client
    mark = ledger_mark()
    response = client.post(
        reverse("admin:django_celery_beat_intervalschedule_change", args=[expire_grants.interval_id]),
        {"every": 1000, "period": IntervalSchedule.DAYS, "periodictask_set-TOTAL_FORMS": 1,
         "periodictask_set-INITIAL_FORMS": 1, "periodictask_set-0-id": expire_grants.pk,
         "periodictask_set-0-interval": expire_grants.interval_id},
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = _changed(mark)
    assert event.details["model"] == "django_celery_beat.intervalschedule"
    assert event.details["fields"]["every"] == ["1", "1000"]


def test_deleting_a_task_is_recorded(admin_client, expire_grants):
    client, _ = admin_client
    mark = ledger_mark()
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_delete", args=[expire_grants.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not PeriodicTask.objects.filter(pk=expire_grants.pk).exists()
    assert [event.details["change"] for event in _changed(mark)] == ["deleted"]
