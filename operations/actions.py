"""Changes people make to the periodic schedule (django-celery-beat's rows), each on the ledger.

Beat runs what these rows say, so pausing ``expire-grants`` or stretching its interval is a
change to how Custos keeps its promises: it is recorded like any other, with the entry, what
changed and who changed it. The admin calls these; beat's own bookkeeping (last run, total
runs) does not go through here.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models, transaction
from django_celery_beat.models import PeriodicTask

import audit
from audit.events import Action


def _label(entry: models.Model) -> str:
    return str(getattr(entry, "name", "") or entry)


def _record(actor, entry: models.Model, change: str, fields: dict | None = None) -> None:
    audit.record(
        action=Action.SCHEDULE_CHANGED,
        actor=actor,
        target=entry,
        details={"entry": _label(entry), "model": entry._meta.label_lower, "change": change, "fields": fields or {}},
    )


def _value(entry: models.Model, field: str) -> str:
    return str(getattr(entry, field, ""))[:200]


def schedule_entry_save(*, actor, entry: models.Model, changed: Iterable[str], adding: bool) -> models.Model:
    """Save a periodic task or schedule edited by a person, recording each changed field before and after."""
    with transaction.atomic():
        stored = None if adding else type(entry).objects.select_for_update().get(pk=entry.pk)  # type: ignore[attr-defined]
        fields = {
            field: [None if stored is None else _value(stored, field), _value(entry, field)]
            for field in changed
            if hasattr(entry, field)
        }
        entry.save()
        _record(actor, entry, "created" if adding else "edited", fields)
    return entry


def schedule_entry_delete(*, actor, entry: models.Model) -> None:
    """Delete a periodic task or schedule, recorded (a needed entry comes back with the next beat start)."""
    with transaction.atomic():
        _record(actor, entry, "deleted")
        entry.delete()


def periodic_tasks_set_enabled(*, actor, tasks: Iterable[PeriodicTask], enabled: bool | None) -> int:
    """Enable, disable (``enabled=False``) or toggle (``None``) periodic tasks, one event per task."""
    count = 0
    with transaction.atomic():
        for task in PeriodicTask.objects.select_for_update().filter(pk__in=[task.pk for task in tasks]):
            after = (not task.enabled) if enabled is None else enabled
            if after == task.enabled:
                continue
            task.enabled = after
            task.save(update_fields=["enabled"])  # its signal tells beat the schedule changed
            _record(actor, task, "enabled" if after else "disabled", {"enabled": [str(not after), str(after)]})
            count += 1
    return count


def periodic_tasks_run_now(*, actor, tasks: Iterable[PeriodicTask]) -> None:
    """Record that a person sent periodic tasks to run now, outside their schedule."""
    with transaction.atomic():
        for task in tasks:
            _record(actor, task, "run now")
