from rest_framework.throttling import UserRateThrottle


class QuerySubmitThrottle(UserRateThrottle):
    """Query submissions per user (``API_THROTTLE_QUERY_SUBMIT``, e.g. ``30/minute``): 429 beyond."""

    scope = "query_submit"
