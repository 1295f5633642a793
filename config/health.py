"""``/health``: which dependency is down, for load balancers and people on call.

Each dependency is asked something cheap: ``SELECT 1`` on both databases, a connection to
the broker. 200 when all answer, 503 with ``Retry-After`` naming the ones that do not. The
answer names dependencies only, never an address or an error text (those go to the log).
Open to anyone, like the login page: it reveals nothing about cases or people.
"""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .views import RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)


def _database(alias: str) -> bool:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        logger.warning("health: the %s database is unavailable", alias, exc_info=True)
        return False


def _broker() -> bool:
    from .celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # kombu raises its transport's own errors
        logger.warning("health: the broker is unavailable", exc_info=True)
        return False


def dependencies() -> dict[str, bool]:
    return {"database": _database("default"), "userdata": _database("userdata"), "broker": _broker()}


@login_not_required
@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """``{"status": "ok"|"unavailable", "dependencies": {name: "ok"|"unavailable"}}``, 200 or 503."""
    state = dependencies()
    down = not all(state.values())
    body = {
        "status": "unavailable" if down else "ok",
        "dependencies": {name: "ok" if ok else "unavailable" for name, ok in state.items()},
    }
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if down else None
    return JsonResponse(body, status=503 if down else 200, headers=headers)
