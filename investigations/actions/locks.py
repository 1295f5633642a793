"""The lock order of the actions, and one retry when the database breaks a deadlock anyway.

Lock order (docs/design.md, "Lock order"): an action locks the rows it changes first, with
:func:`locked` (``FOR NO KEY UPDATE`` of the model's own rows only, never of the rows
``select_related`` joins), and touches the chain head last, when it records its event.
``NO KEY UPDATE`` does not conflict with the ``KEY SHARE`` lock that another transaction's
foreign-key check takes (at its COMMIT: Django's foreign keys are deferrable), so writing a
row that points at a locked case, request or user never waits for the lock holder.

Retry: the lock order (docs/design.md, "Lock order") prevents the deadlocks we know of; this is
the second wall for the ones we do not. PostgreSQL aborts one transaction of a deadlock
(SQLSTATE 40P01) or a serialization failure (40001) and rolls it back completely: nothing
of it was written, and Django drops the ``on_commit`` callbacks it registered. Running the
whole action again is therefore safe, provided the action owns its transaction. Inside a
caller's transaction (``in_atomic_block``) the caller's work is lost too, so the error is
passed up unchanged for the outermost owner to handle.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.models import Manager, Model, QuerySet

logger = logging.getLogger("investigations.actions.retry")

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=Model)

# deadlock_detected, serialization_failure
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def locked(queryset: QuerySet[M] | Manager[M], **options: bool) -> QuerySet[M]:
    """``queryset`` locked for update in the documented way: its own rows, ``FOR NO KEY UPDATE``.

    ``options`` go to ``select_for_update`` (``skip_locked``). SQLite ignores row locks: its
    ``BEGIN IMMEDIATE`` already serialises writers.
    """
    return queryset.select_for_update(of=("self",), no_key=True, **options)


def is_conflict(error: BaseException) -> bool:
    """True for an error the database raised to break a deadlock or a serialization conflict."""
    cause = error.__cause__ or error
    return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES or getattr(cause, "pgcode", None) in (
        RETRYABLE_SQLSTATES
    )


def retry_on_conflict(action: Callable[P, R]) -> Callable[P, R]:
    """Decorate an action so that a deadlock or serialization failure runs it once more, whole."""

    @functools.wraps(action)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return action(*args, **kwargs)
        try:
            return action(*args, **kwargs)
        except OperationalError as error:
            if not is_conflict(error):
                raise
            logger.warning("%s met a database conflict; retrying it once: %s", action.__name__, error)
        return action(*args, **kwargs)

    return run
