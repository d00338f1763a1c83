"""Bearer tokens: made once, shown once, stored as a hash, found by their public part."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations.models import ServiceAccount, ServiceToken

# kh_<key id>_<secret>: the key id finds the row, the whole token's hash proves it.
TOKEN_SHAPE = re.compile(r"^kh_(?P<key_id>[a-z2-7]{10})_(?P<secret>[A-Za-z0-9_-]{32,64})$")
_KEY_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@sensitive_variables("token")
def token_make(account: ServiceAccount) -> tuple[ServiceToken, str]:
    """Store a new token for `account`; return the row and the token, which exists nowhere
    else from now on (show it once)."""
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(10))
    token = f"kh_{key_id}_{secrets.token_urlsafe(32)}"
    row = ServiceToken.objects.create(account=account, key_id=key_id, token_hash=token_hash(token))
    return row, token


class TokenRefused(Exception):
    """A bearer token that opens nothing; `code` says why, for the API's error."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Who an API call comes from: the service account and the token it used."""

    account: ServiceAccount
    token: ServiceToken


@sensitive_variables("token")
def token_authenticate(token: str, *, now=None) -> Caller:
    """Return the caller `token` belongs to, or raise TokenRefused (never saying whether a
    token with that public part exists: every unknown token reads the same)."""
    now = now or timezone.now()
    match = TOKEN_SHAPE.match(token or "")
    unknown = TokenRefused(
        "invalid_token",
        "This token is not valid: check that the whole token was copied "
        "(it starts with kh_), or ask for a new one.",
    )
    if match is None:
        raise unknown
    row = ServiceToken.objects.select_related("account").filter(key_id=match["key_id"]).first()
    if row is None or not hmac.compare_digest(row.token_hash, token_hash(token)):
        raise unknown
    if row.revoked_at is not None or row.account.revoked_at is not None:
        raise TokenRefused("token_revoked", "This token was revoked: ask for a new one.")
    if not row.is_usable(now):
        raise TokenRefused(
            "token_expired",
            "This token was replaced and its grace period is over: use the new token.",
        )
    if not row.account.is_usable(now):
        raise TokenRefused(
            "account_expired", "This service account has expired: ask for it to be renewed."
        )
    # At most once a minute per token: a busy integration does not write on every call.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ServiceToken.objects.filter(pk=row.pk).update(last_used_at=now)
        ServiceAccount.objects.filter(pk=row.account_id).update(last_used_at=now)
    return Caller(account=row.account, token=row)
