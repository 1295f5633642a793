"""The Celery app. Configuration lives in settings (CELERY_* keys); the beat schedule too."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("custos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _tell_the_supervisor(**kwargs) -> None:
    """``make run`` (config/run.py) prints the demo logins only once the worker is up too."""
    marker = os.environ.get("CUSTOS_WORKER_READY_FILE")
    if marker:
        Path(marker).touch()
