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

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code in responses:
                continue
            if code == "400":
                response = {"content": {"application/json": {"schema": FIELD_ERRORS_SCHEMA}}}
            else:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
            step_up = code == "403" and self._needs_step_up()
            response["description"] = STEP_UP_403 if step_up else ERROR_DESCRIPTIONS[code]
            responses[code] = response
        return responses
