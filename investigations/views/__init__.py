"""Views, split by sub-domain. Thin: objects come from access.py, changes from actions."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def conflict(request: HttpRequest, message: str, case=None) -> HttpResponse:
    """The object is in the wrong state for this (HTTP 409), with the reason."""
    return render(request, "investigations/conflict.html", {"case": case, "message": message}, status=409)
