"""Who may call the API: an authenticated service account, from an address it allows, holding
the scope the view declares (`required_scope`)."""

from rest_framework.permissions import BasePermission

from api.exceptions import IpNotAllowed, MissingScope
from audit.services import client_ip
from integrations.services.tokens import Caller


class IsServiceAccount(BasePermission):
    """Allow a call authenticated by a service account's token (`request.auth` is its
    Caller), from one of the account's allowed addresses (403 `ip_not_allowed`), when the
    account holds the view's `required_scope` (403 `missing_scope`, naming it).

    Without a Caller it answers False, which REST framework turns into 401
    `not_authenticated`.
    """

    def has_permission(self, request, view):
        caller = request.auth
        if not isinstance(caller, Caller):
            return False
        account = caller.account
        ip = client_ip(request)
        if not account.allows_ip(ip):
            raise IpNotAllowed(account=account, ip=ip)
        scope = getattr(view, "required_scope", "")
        if scope and not account.has_scope(scope):
            raise MissingScope(account=account, scope=scope)
        return True
