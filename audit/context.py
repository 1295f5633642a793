"""Request metadata (IP, user agent, request id) for the events a request causes.

The middleware puts it in a context variable; ``audit.record`` reads it, so actions do not
have to thread the request through every call.
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    ip: str = ""
    user_agent: str = ""
    request_id: str = ""


_current: contextvars.ContextVar[RequestMeta] = contextvars.ContextVar("audit_request_meta", default=RequestMeta())  # noqa: B039  (frozen)


def meta_from_request(request) -> RequestMeta:
    return RequestMeta(
        ip=request.META.get("REMOTE_ADDR", "")[:64],
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
        request_id=getattr(request, "request_id", "") or uuid.uuid4().hex,
    )


def current_meta() -> RequestMeta:
    return _current.get()


def set_meta(meta: RequestMeta) -> contextvars.Token:
    return _current.set(meta)


def reset_meta(token: contextvars.Token) -> None:
    _current.reset(token)
