"""Is every periodic task running? The one place that answers it, for the command and the page.

The schedule comes from django-celery-beat's ``PeriodicTask`` rows (what beat really runs,
as admins may have changed it) plus any entry of ``CELERY_BEAT_SCHEDULE`` beat has not
copied into the database yet; the last runs come from ``TaskHealth``, written by the
workers. Both live in the database, so this works whatever the broker.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import schedules as celery_schedules
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from .models import TaskHealth

OVERDUE_FACTOR = 2
# A crontab's interval is the longest gap between its runs over this horizon.
CRONTAB_HORIZON = timedelta(days=8)
CRONTAB_MAX_RUNS = 2000


@dataclass(frozen=True)
class ScheduleHealth:
    name: str
    task: str
    every: timedelta | None
    enabled: bool
    in_database: bool
    last_sent_at: datetime | None
    health: TaskHealth | None
    state: str

    @property
    def overdue(self) -> bool:
        return self.state in {"overdue", "never succeeded"}

    @property
    def last_succeeded_at(self) -> datetime | None:
        return self.health.last_succeeded_at if self.health else None

    @property
    def failing(self) -> bool:
        """The last finished run failed."""
        health = self.health
        return bool(health and health.last_failed_at and (
            health.last_succeeded_at is None or health.last_failed_at > health.last_succeeded_at
        ))


def _crontab_interval(cron: celery_schedules.crontab, start: datetime) -> timedelta:
    """The longest gap between two consecutive runs of ``cron`` from ``start`` on."""
    probe, moment, longest = copy.copy(cron), start, timedelta(0)
    for _ in range(CRONTAB_MAX_RUNS):
        probe.nowfun = lambda moment=moment: moment
        gap = max(probe.remaining_estimate(moment), timedelta(seconds=1))
        if moment > start:
            longest = max(longest, gap)
        moment += gap
        if moment - start > CRONTAB_HORIZON:
            break
    return longest


def interval(schedule, now: datetime) -> timedelta | None:
    """How often ``schedule`` runs at most apart; None for one-off schedules."""
    if isinstance(schedule, timedelta):
        return schedule
    if isinstance(schedule, celery_schedules.crontab):
        return _crontab_interval(schedule, now)
    if isinstance(schedule, celery_schedules.solar):
        return timedelta(days=1)
    if isinstance(schedule, celery_schedules.schedule):
        return schedule.run_every
    return None


def _state(enabled: bool, every: timedelta | None, health: TaskHealth | None, now: datetime) -> str:
    if not enabled:
        return "paused"
    if every is None:
        return "one-off"
    if health is None or health.last_succeeded_at is None:
        return "never succeeded"
    return "overdue" if now - health.last_succeeded_at > OVERDUE_FACTOR * every else "ok"


def _entries(now: datetime) -> list[tuple[str, str, timedelta | None, bool, bool, datetime | None]]:
    entries = {}
    for periodic in PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked"):
        every = None if periodic.one_off else interval(periodic.schedule, now)
        entries[periodic.name] = (periodic.task, every, periodic.enabled, True, periodic.last_run_at)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        if name not in entries:
            entries[name] = (entry["task"], interval(entry["schedule"], now), True, False, None)
    return [(name, *values) for name, values in sorted(entries.items())]


def schedule_health(now: datetime | None = None) -> list[ScheduleHealth]:
    """One row per periodic task, with its last success and whether it is overdue.

    Overdue: the last success is older than ``OVERDUE_FACTOR`` times the task's interval,
    or it has never succeeded. Paused and one-off entries are never overdue.
    """
    now = now or timezone.now()
    health = {row.task: row for row in TaskHealth.objects.all()}
    return [
        ScheduleHealth(name, task, every, enabled, in_database, last_sent, health.get(task),
                       _state(enabled, every, health.get(task), now))
        for name, task, every, enabled, in_database, last_sent in _entries(now)
    ]
