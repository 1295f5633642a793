import uuid

from .context import meta_from_request, reset_meta, set_meta


class RequestContextMiddleware:
    """Give every request an id and make its metadata available to the ledger."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = uuid.uuid4().hex
        token = set_meta(meta_from_request(request))
        try:
            response = self.get_response(request)
        finally:
            reset_meta(token)
        response["X-Request-ID"] = request.request_id
        return response
