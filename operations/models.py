"""What the workers report about themselves, kept in the database so it works on any broker.

This app imports no other project app: it watches Celery, not the product.
"""

from __future__ import annotations

from django.db import models


class TaskHealth(models.Model):
    """One row per Celery task name: its last start, success, failure and run time.

    Written by Celery signal handlers in the worker (``operations.signals``); read by
    ``manage.py worker_health`` and the staff page.
    """

    task = models.CharField(max_length=200, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_runtime = models.FloatField(null=True, blank=True, help_text="seconds taken by the last finished run")

    class Meta:
        ordering = ["task"]
        verbose_name_plural = "task health"

    def __str__(self) -> str:
        return self.task
