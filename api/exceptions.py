"""The refusals the API raises itself, each with its code and its words (what is wrong, and
how to fix it); `api.errors.exception_handler` writes them as JSON errors."""

from rest_framework import exceptions, status

from credentials.models import Mode, Provider
from integrations.scopes import Scope

MERCHANTS_URL = "/api/v1/merchants/"


class MerchantNotFound(exceptions.NotFound):
    # The same words for a merchant that does not exist and for one the account may not
    # see: nothing tells an account which slugs exist beyond those it serves.
    default_detail = (
        "No merchant with this slug is served by this service account: check the slug "
        f"against the list at {MERCHANTS_URL}."
    )


class SecretNotFound(exceptions.NotFound):
    # One answer for every reason there is no secret to give (no such merchant, a merchant
    # the account may not see, no active verified key in that mode).
    default_detail = (
        "There is no active verified key of this provider and mode for a merchant with this "
        f"slug served by this service account: check the slug against {MERCHANTS_URL} and the "
        f"merchant's keys at {MERCHANTS_URL}<slug>/credentials/ (a key's secret can be fetched "
        "once its provider has verified it)."
    )


class UnknownProvider(exceptions.NotFound):
    default_code = "unknown_provider"
    default_detail = (
        f"Unknown provider in the address: use one of {', '.join(Provider.values)} (lower case)."
    )


class UnknownMode(exceptions.NotFound):
    default_code = "unknown_mode"
    default_detail = f"Unknown mode in the address: use one of {', '.join(Mode.values)}."


class NoSuchAddress(exceptions.NotFound):
    default_code = "no_such_address"
    default_detail = (
        "There is nothing at this address: the API's addresses end with a slash and are "
        "listed at /api/docs/."
    )


class MissingScope(exceptions.PermissionDenied):
    default_code = "missing_scope"

    def __init__(self, *, account, scope: str):
        super().__init__(
            f"This call needs the scope {scope} ({Scope(scope).label.lower()}), which service "
            f"account {account.name} does not have: ask a Keyhouse administrator to add it."
        )


class IpNotAllowed(exceptions.PermissionDenied):
    default_code = "ip_not_allowed"

    def __init__(self, *, account, ip: str | None):
        super().__init__(
            f"Calls from {ip or 'an unknown address'} are not allowed for service account "
            f"{account.name}: call from one of its allowed addresses, or ask a Keyhouse "
            "administrator to allow this one."
        )


class InvalidCursor(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_cursor"
    default_detail = (
        "This cursor is not valid: follow the `next` and `previous` links of a page as they "
        "are given, or leave the cursor out for the first page."
    )


class InvalidPageSize(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_page_size"
