"""Logs: plain by default, JSON on request, the request id on every record and in the tasks a request enqueued."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
from django.contrib.auth.models import Group

from audit.context import RequestMeta, reset_meta, set_meta
from custos_testing.worker import wait_for
from tests.worker_tasks import record_request_id


def _log_with(settings_logging: dict, formatter: str) -> str:
    from django.conf import settings

    stream = io.StringIO()
    config = {**settings_logging, "handlers": {"console": {**settings_logging["handlers"]["console"]}}}
    config["formatters"] = {formatter: settings.LOG_FORMATTERS[formatter]}
    config["handlers"]["console"]["formatter"] = formatter
    config["handlers"]["console"]["stream"] = stream
    config["root"] = {"handlers": ["console"], "level": "INFO"}
    logging.config.dictConfig(config)
    token = set_meta(RequestMeta(request_id="req-0123"))
    try:
        logging.getLogger("custos.test").warning("grant %s revoked", 7)
    finally:
        reset_meta(token)
    return stream.getvalue()


@pytest.fixture
def restore_logging(settings):
    yield settings.LOGGING
    logging.config.dictConfig(settings.LOGGING)


def test_json_logs_carry_the_request_id(restore_logging):
    line = json.loads(_log_with(restore_logging, "json").strip())
    assert line["message"] == "grant 7 revoked" and line["request_id"] == "req-0123"
    assert line["level"] == "WARNING" and line["logger"] == "custos.test" and "time" in line


def test_plain_logs_are_the_default_and_carry_the_request_id(restore_logging, settings):
    assert settings.LOG_FORMAT == "plain"
    assert restore_logging["handlers"]["console"]["formatter"] == "plain"
    assert "[req-0123] grant 7 revoked" in _log_with(restore_logging, "plain")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_runs_under_the_request_id_of_the_request_that_enqueued_it(celery_worker_process):
    token = set_meta(RequestMeta(request_id="feedface0123"))
    try:
        record_request_id.delay("from-request")
    finally:
        reset_meta(token)
    record_request_id.delay("no-request")

    def both_ran() -> set[str] | None:
        names = set(Group.objects.filter(name__contains=":").values_list("name", flat=True))
        return names if len(names) == 2 else None

    names = wait_for(both_ran, "both tasks' runs", celery_worker_process, seconds=60)
    assert names == {"from-request:feedface0123", "no-request:"}
