from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from audit.context import client_ip


class QuerySubmitThrottle(UserRateThrottle):
    """Query submissions per user (``API_THROTTLE_QUERY_SUBMIT``, e.g. ``30/minute``): 429 beyond.

    A caller without a user is counted by client address as the ledger and the lockout see it
    (``CUSTOS_PROXY_COUNT``), never by a forwarded header it wrote itself."""

    scope = "query_submit"

    def get_ident(self, request: Request) -> str:
        return client_ip(request)
