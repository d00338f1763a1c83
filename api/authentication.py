"""Bearer tokens of service accounts: `Authorization: Bearer kh_…`, nothing else.

No session and no CSRF: the API is called by programs, never by a signed-in browser, so a
session cookie opens nothing here. `request.user` stays anonymous and `request.auth` is the
`Caller` (the service account and the token it used).
"""

from django.contrib.auth.models import AnonymousUser
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from integrations.services.tokens import TokenRefused, token_authenticate

KEYWORD = "Bearer"
MALFORMED = (
    "The Authorization header must read `Bearer <token>`, with the service account's whole "
    "token (it starts with kh_) after one space."
)


class ServiceTokenAuthentication(BaseAuthentication):
    """Authenticate a call by its bearer token (`integrations.services.tokens`).

    No Authorization header: not authenticated (401 `not_authenticated`, from the view).
    Another scheme, or no token after `Bearer`: 401 `malformed_authorization`. A token that
    opens nothing: 401 with TokenRefused's code (`invalid_token`, `token_revoked`,
    `token_expired`, `account_expired`).
    """

    @sensitive_variables("header", "parts")
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != KEYWORD.lower() or not parts[1].isascii():
            raise exceptions.AuthenticationFailed(MALFORMED, code="malformed_authorization")
        try:
            caller = token_authenticate(parts[1])
        except TokenRefused as refused:
            raise exceptions.AuthenticationFailed(refused.message, code=refused.code) from None
        return AnonymousUser(), caller

    def authenticate_header(self, request):
        # Sent with every 401: what a client should answer with.
        return f'{KEYWORD} realm="api"'
