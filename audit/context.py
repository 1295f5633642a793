"""Request metadata (IP, user agent, request id) for the events a request causes.

The middleware puts it in a context variable; ``audit.record`` reads it, so actions do not
have to thread the request through every call.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RequestMeta:
    ip: str = ""
    user_agent: str = ""
    request_id: str = ""


_current: contextvars.ContextVar[RequestMeta] = contextvars.ContextVar("audit_request_meta", default=RequestMeta())  # noqa: B039  (frozen)


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str:
    """The client's address, derived in one place for the ledger, the lockout and the throttles.

    ``CUSTOS_PROXY_COUNT`` says how many proxies stand in front of Custos. With none (the
    default), ``X-Forwarded-For`` is ignored: anyone can write it. With N, each of our proxies
    appended the address it received the request from, so the N-th entry from the right is the
    address the outermost proxy saw; entries further left are the client's own claims and are
    never used. With fewer than N entries the leftmost is taken, as Django REST framework does.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.CUSTOS_PROXY_COUNT
    if proxies <= 0:
        return remote
    chain = [entry for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if not chain:
        return remote
    return _address(chain[-min(proxies, len(chain))]) or remote


def meta_from_request(request) -> RequestMeta:
    return RequestMeta(
        ip=client_ip(request)[:64],
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
        request_id=getattr(request, "request_id", "") or uuid.uuid4().hex,
    )


def current_meta() -> RequestMeta:
    return _current.get()


def set_meta(meta: RequestMeta) -> contextvars.Token:
    return _current.set(meta)


def reset_meta(token: contextvars.Token) -> None:
    _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Put the current request id on every log record (``%(request_id)s``, a JSON field)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get().request_id or "-"
        return True


# --- carried into Celery tasks --------------------------------------------------------------

TASK_HEADER = "custos_request_id"


def _publishing(headers: dict | None = None, **_kwargs) -> None:
    """A task enqueued while a request is served carries that request's id."""
    request_id = _current.get().request_id
    if headers is not None and request_id:
        headers.setdefault(TASK_HEADER, request_id)


_task_tokens: dict[str, contextvars.Token] = {}


def _task_starting(task_id: str = "", task=None, **_kwargs) -> None:
    request_id = getattr(getattr(task, "request", None), TASK_HEADER, None) or ""
    if request_id:
        _task_tokens[task_id] = set_meta(RequestMeta(request_id=str(request_id)[:64]))


def _task_finished(task_id: str = "", **_kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        reset_meta(token)


def connect_task_signals() -> None:
    """Called once from ``AuditConfig.ready``: telemetry plumbing, not business logic."""
    from celery import signals

    signals.before_task_publish.connect(_publishing, weak=False, dispatch_uid="custos-request-id-publish")
    signals.task_prerun.connect(_task_starting, weak=False, dispatch_uid="custos-request-id-prerun")
    signals.task_postrun.connect(_task_finished, weak=False, dispatch_uid="custos-request-id-postrun")
