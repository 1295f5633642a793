import time
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from tests.worker_tasks import create_group


@pytest.mark.worker
def test_task_enqueued_on_commit_runs_in_a_real_worker(celery_worker_process):
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    with transaction.atomic():
        transaction.on_commit(lambda: create_group.delay(name))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Group.objects.filter(name=name).exists():
            return
        time.sleep(0.25)
    pytest.fail(f"the worker did not run the task within 60 s; its log:\n{celery_worker_process.log()}")


@pytest.mark.django_db
def test_task_is_enqueued_only_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(create_group, "delay", lambda *args: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        transaction.on_commit(lambda: create_group.delay("after-commit"))
        assert sent == []
    assert len(callbacks) == 1
    assert sent == [("after-commit",)]
