"""The Celery app. Configuration lives in settings (CELERY_* keys); the beat schedule too."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("custos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
