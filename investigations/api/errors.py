"""One error shape for the whole API.

* 400: ``{"field": ["message", ...]}`` (errors not about one field, and a body that is not
  JSON, under ``non_field_errors``);
* 401, 403, 404, 405, 406, 409, 413, 415, 429: ``{"detail": "...", "code": "..."}``; a refused
  query adds ``"query"``, the id of the attempt's record.

Actions raise Django's ``ValidationError`` (400), ``PermissionDenied`` (403),
``InvalidTransition`` (409) and ``QueryDenied`` (403 with the denial reason as ``code``);
the chokepoints raise ``Http404``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..errors import InvalidTransition, QueryDenied, ResultsUnavailable
from .parsers import PayloadTooLarge

NON_FIELD = "non_field_errors"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not allowed in the object's current state."
    default_code = "invalid_transition"


def field_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    """A Django ``ValidationError`` as ``{field: [messages]}``."""
    if not hasattr(error, "error_dict"):
        return {NON_FIELD: list(error.messages)}
    return {
        NON_FIELD if field == "__all__" else field: list(messages) for field, messages in error.message_dict.items()
    }


def form_errors(form) -> dict[str, list[str]]:
    return {
        NON_FIELD if field == "__all__" else field: [entry["message"] for entry in entries]
        for field, entries in form.errors.get_json_data().items()
    }


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, QueryDenied):
        denied = exceptions.PermissionDenied(str(exc), code=exc.query.denial_reason)
        denied.query_id = exc.query.pk
        return denied
    if isinstance(exc, ResultsUnavailable):
        return exceptions.PermissionDenied(str(exc), code=ResultsUnavailable.code)
    if isinstance(exc, InvalidTransition):
        return Conflict(str(exc))
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(field_errors(exc))
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, Http404):
        return exceptions.NotFound()  # never the chokepoint's own words: invisible and absent look alike
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    return exc


def _messages(value, prefix: str = "") -> list[str]:
    """Nested errors (an item of a list, a key of an object) flattened to one list of strings."""
    if isinstance(value, dict):
        return [message for key, inner in value.items() for message in _messages(inner, f"{prefix}item {key}: ")]
    if isinstance(value, list | tuple):
        return [message for inner in value for message in _messages(inner, prefix)]
    return [f"{prefix}{value}"]


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def exception_handler(exc: Exception, context: dict) -> Response | None:
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: Django's 500 handling and logging take over
    if isinstance(exc, exceptions.ValidationError):
        data = response.data if isinstance(response.data, dict) else {NON_FIELD: response.data}
        response.data = {str(field): _messages(value) for field, value in data.items()}
        return response
    if isinstance(exc, exceptions.ParseError):  # a 400 like any other: what was wrong with the body
        response.data = {NON_FIELD: [str(exc.detail)]}
        return response
    body = {"detail": str(exc.detail), "code": _code(exc)}
    if getattr(exc, "query_id", None) is not None:
        body["query"] = exc.query_id
    response.data = body
    return response


class ErrorSerializer(serializers.Serializer):
    """The body of every error but 400."""

    detail = serializers.CharField()
    code = serializers.CharField(help_text="Machine-readable: e.g. not_found, permission_denied, grant_expired.")
    query = serializers.IntegerField(required=False, help_text="A refused query: the id of its record.")


FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Field name (or non_field_errors) to its messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
