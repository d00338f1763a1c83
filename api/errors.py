"""JSON errors: every refusal reads `{"error": {"code": "…", "message": "…"}}`, the code for
the integrator's program, the message for the person reading its logs (what is wrong, and
how to fix it).

The refusals the API raises itself are in `api.exceptions`, with their words; REST
framework's own (no token, a method or an Accept header the API does not answer, too many
calls) get theirs here.
"""

from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from api.exceptions import NoSuchAddress

# REST framework's own refusals, in words that say what to do.
_MESSAGES = {
    exceptions.NotAuthenticated: (
        "not_authenticated",
        "This call needs a service account's token: send it as `Authorization: Bearer kh_…`.",
    ),
    exceptions.MethodNotAllowed: (
        "method_not_allowed",
        "This address only answers GET (and HEAD, OPTIONS): the API is read-only.",
    ),
    exceptions.NotAcceptable: (
        "not_acceptable",
        "The API answers in JSON only: send `Accept: application/json`, or no Accept header.",
    ),
    exceptions.UnsupportedMediaType: (
        "unsupported_media_type",
        "The API takes no request body: send GET requests without one.",
    ),
    exceptions.ParseError: (
        "parse_error",
        "The API takes no request body: send GET requests without one.",
    ),
}


def exception_handler(exc, context):
    """Return REST framework's response for `exc` with the body rewritten as the API's JSON
    error; None (a server error, left to Django) for anything that is not a refusal."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code, message = _describe(exc, response)
    response.data = {"error": {"code": code, "message": message}}
    return response


def _describe(exc, response) -> tuple[str, str]:
    if isinstance(exc, exceptions.Throttled):
        wait = response.headers.get("Retry-After", "a few")
        return (
            "throttled",
            "Too many calls from this service account: wait "
            f"{wait} seconds (the Retry-After header) before calling again.",
        )
    for kind, words in _MESSAGES.items():
        if type(exc) is kind:
            return words
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        detail = exc.detail
        if isinstance(code, str) and isinstance(detail, str):
            return code, str(detail)
    # Django's own Http404 and PermissionDenied, turned into REST framework's by its handler
    # with their default words: say what is known.
    if response.status_code == status.HTTP_404_NOT_FOUND:
        return "not_found", NoSuchAddress.default_detail
    if response.status_code == status.HTTP_403_FORBIDDEN:
        return "permission_denied", "This service account may not make this call."
    return "invalid", "This request cannot be answered as sent: see /api/docs/."
