"""Tasks that only the test worker loads (``--include tests.worker_tasks``)."""

from celery import shared_task
from django.contrib.auth.models import Group


@shared_task(name="tests.create_group")
def create_group(name: str) -> None:
    Group.objects.get_or_create(name=name)


@shared_task(name="tests.fail")
def fail(reason: str) -> None:
    raise ValueError(reason)


@shared_task(name="tests.record_request_id")
def record_request_id(label: str) -> None:
    """Leave the request id the task runs under where the test can see it (a group's name)."""
    from audit.context import current_meta

    Group.objects.get_or_create(name=f"{label}:{current_meta().request_id}")
