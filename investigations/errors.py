from django.core.exceptions import PermissionDenied


class InvalidTransition(Exception):
    """The object is not in a state that allows this action (HTTP 409).

    ``case``, given where the refusal is about one case, puts a link back to it on the page
    (``investigations.middleware.ConflictMiddleware``); the API answers the message only.
    """

    def __init__(self, message: str, *, case=None):
        super().__init__(message)
        self.case = case


class QueryDenied(PermissionDenied):
    """A query attempt was refused. The refusal is already recorded: ``query`` is its record."""

    def __init__(self, query):
        self.query = query
        super().__init__(query.get_denial_reason_display())


class ResultsUnavailable(PermissionDenied):
    """The rows of a query may not be read now (HTTP 403, code ``results_unavailable``)."""

    code = "results_unavailable"
