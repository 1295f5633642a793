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
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.module_loading import import_string
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
        """Not running as Custos needs: late, never succeeded, or a needed task disabled."""
        return self.state in {"overdue", "never succeeded", "disabled"}

    @property
    def waiting(self) -> bool:
        """Has not run yet, and is not late for its first run."""
        return self.state == "not run yet"

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


def needed_tasks() -> set[str]:
    """The tasks of Custos's own schedule (``CELERY_BEAT_SCHEDULE``): grants expire, the ledger is
    sealed and verified, oversight scans, only while these run."""
    return {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


def _state(
    enabled: bool, every: timedelta | None, health: TaskHealth | None, expected_since: datetime | None, now: datetime,
    needed: bool = False,
) -> str:
    if not enabled:
        return "disabled" if needed else "paused"
    if every is None:
        return "one-off"
    if health is None or health.last_succeeded_at is None:
        ran_and_failed = health is not None and health.last_failed_at is not None
        if not ran_and_failed and expected_since and now - expected_since <= OVERDUE_FACTOR * every:
            return "not run yet"
        return "never succeeded"
    return "overdue" if now - health.last_succeeded_at > OVERDUE_FACTOR * every else "ok"


def installed_at() -> datetime | None:
    """When this app's tables were created: the first migration of ``operations`` applied."""
    recorder = MigrationRecorder(connection)
    return recorder.migration_qs.filter(app="operations").order_by("applied").values_list("applied", flat=True).first()


def _entries(now: datetime) -> list[tuple[str, str, timedelta | None, bool, bool, datetime | None, datetime | None]]:
    """(name, task, interval, enabled, stored by beat, last sent, expected since) per entry.

    "Expected since" starts the grace a task that has never succeeded gets for its first
    run (``OVERDUE_FACTOR`` times its interval), so a fresh install does not report its
    daily tasks overdue for a day. For a schedule beat stored but has never sent, it is when
    the schedule was created or last changed (``date_changed``; beat's own saves move it
    only when it sends). Otherwise it is when Custos was installed: once beat has sent a
    task, or has not stored the schedule at all, the clock runs from the installation, so a
    worker or beat that never started is reported within minutes, by the minute tasks.
    """
    installed = installed_at()
    entries = {}
    for periodic in PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked"):
        every = None if periodic.one_off else interval(periodic.schedule, now)
        since = periodic.date_changed if periodic.last_run_at is None else installed
        entries[periodic.name] = (periodic.task, every, periodic.enabled, True, periodic.last_run_at, since)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        if name not in entries:
            entries[name] = (entry["task"], interval(entry["schedule"], now), True, False, None, installed)
    return [(name, *values) for name, values in sorted(entries.items())]


def schedule_health(now: datetime | None = None) -> list[ScheduleHealth]:
    """One row per periodic task, with its last success and whether it is overdue.

    Overdue: the last success is older than ``OVERDUE_FACTOR`` times the task's interval;
    or it has never succeeded and either ran and failed, or is past the grace for its first
    run (see ``_entries``); or it is one of the tasks Custos needs and someone disabled it
    (state ``disabled``). Other paused entries and one-off entries are never overdue.
    """
    now = now or timezone.now()
    health = {row.task: row for row in TaskHealth.objects.all()}
    needed = needed_tasks()
    return [
        ScheduleHealth(name, task, every, enabled, in_database, last_sent, health.get(task),
                       _state(enabled, every, health.get(task), since, now, needed=task in needed))
        for name, task, every, enabled, in_database, last_sent, since in _entries(now)
    ]


def probe_rows() -> list[dict]:
    """Rows of the other checks named in ``OPERATIONS_HEALTH_PROBES`` (e.g. ledger streams).

    Each row is a dict with ``name``, ``state``, ``detail`` and ``failing``; the callables are
    named by dotted path so that this app imports no other.
    """
    rows: list[dict] = []
    for path in getattr(settings, "OPERATIONS_HEALTH_PROBES", []):
        rows += import_string(path)()
    return rows
