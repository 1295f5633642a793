"""The schema documents every error an operation can answer, in the shapes of ``errors.py``."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

from .errors import FIELD_ERRORS_SCHEMA, ErrorSerializer

ERROR_DESCRIPTIONS = {
    "400": "Bad input: field errors; nothing changed.",
    "401": "Not authenticated (no, expired or revoked token).",
    "403": "Visible but not allowed, with a code.",
    "404": "Not found, or not visible to the caller.",
    "409": "Not allowed in the object's current state.",
    "413": "The request body is too large.",
    "415": "The body is not JSON (send Content-Type: application/json).",
    "429": "Throttled: retry after the Retry-After header's seconds.",
    "503": "The database is unavailable (code database_unavailable): nothing changed; retry after the "
    "Retry-After header's seconds.",
}


STEP_UP_403 = (
    "Visible but not allowed, with a code; `step_up_required` when the caller may act but its token "
    "(or session) has no second-factor check within CUSTOS_STEP_UP_MINUTES: step up at "
    "POST /api/v1/auth/step-up/ (or get a token with `otp`) and send the same request again."
)


class CustosAutoSchema(AutoSchema):
    """drf-spectacular's schema, with every error an operation can answer added to the operation
    it built (public hooks only: ``get_operation``, ``resolve_serializer``, ``map_renderers``)."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:  # excluded from the schema
            return None
        responses = operation["responses"]
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._error_response(code)
        return operation

    def _needs_step_up(self) -> bool:
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        return getattr(handler, "step_up_required", False)

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "404"]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append("409")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        if self.view.get_throttles():
            codes.append("429")
        return [*codes, "503"]

    def _error_response(self, code: str) -> dict:
        if code == "400":
            content = {"application/json": {"schema": FIELD_ERRORS_SCHEMA}}
        else:
            error = self.resolve_serializer(ErrorSerializer(), "response").ref
            content = {media_type: {"schema": error} for media_type in self.map_renderers("media_type")}
        step_up = code == "403" and self._needs_step_up()
        return {"content": content, "description": STEP_UP_403 if step_up else ERROR_DESCRIPTIONS[code]}
