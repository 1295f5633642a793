"""The one place a page turns a refused state change into what the user sees."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .errors import InvalidTransition
from .views import conflict


class ConflictMiddleware:
    """An ``InvalidTransition`` out of any page answers the 409 page with its reason (and the
    way back to its case), as ``api.errors`` answers a 409 for the API. Views only catch it
    where they show something else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, InvalidTransition):
            return conflict(request, str(exception), case=exception.case)
        return None
