"""Asking Stripe about a key, and locking the key to record the answer: what verification
and re-verification share."""

from django.views.decorators.debug import sensitive_variables

from credentials.models import Credential, Kind
from credentials.stripe_client import (
    AccountFacts,
    KeyRefused,
    StripeUnavailable,
    stripe_account_facts,
)

# What merchants and the helpdesk read about an outcome: our own sentences, never Stripe's
# message (which can echo the key).
REASONS = {
    "verified": "Stripe accepted this key.",
    "limited_permissions": (
        "Stripe accepted this restricted key, but it cannot read the account's details, only "
        "its balance. That is enough to check it works; the helpdesk will tell you if an "
        "integration needs more permissions."
    ),
    "invalid_api_key": (
        "Stripe did not accept this key (mistyped, rolled or deleted). Check the key in the "
        "Stripe dashboard (Developers → API keys), or roll it there, and submit it again."
    ),
    "api_key_expired": (
        "Stripe says this key has expired. Roll it in the Stripe dashboard (Developers → API "
        "keys) and submit the new one."
    ),
    "insufficient_permissions": (
        "This restricted key may read neither the account nor its balance. Give it read "
        "access in the Stripe dashboard, or submit the secret key instead."
    ),
    # A secret key sees everything its account allows: a 403 means the account itself is
    # held back, not that a permission is missing.
    "secret_key_forbidden": (
        "Stripe refused this secret key access to the account's details and balance, which "
        "usually means the account is restricted or under review. Check the account's status "
        "in the Stripe dashboard; the helpdesk has been told."
    ),
    "livemode_mismatch": (
        "This key is marked {mode} but Stripe answered for the other mode. Copy both keys "
        "again from the Stripe dashboard, with Test mode set accordingly, and submit them."
    ),
    "retrying": "Stripe did not answer ({what}); trying again shortly.",
    "no_longer_valid": (
        "Stripe no longer accepts this key, which worked before: {reason} Until a new key is "
        "submitted, the integrations that use it stop working."
    ),
    "unreachable": (
        "Stripe could not be reached after {attempts} attempts ({what}). The helpdesk has "
        "been told and will verify the key; there is nothing you need to do."
    ),
}

# What each outage code means, in the merchant's words.
OUTAGES = {
    "rate_limited": "too many requests at once",
    "stripe_error": "an error on Stripe's side",
    "connection_failed": "the connection was refused or dropped",
    "timed_out": "no answer in time",
}


def outage_words(code: str) -> str:
    """Return what outage `code` means, in words (unexpected answers keep their code)."""
    return OUTAGES.get(code, f"unexpected answer: {code}")


def refusal_reason(code: str, *, kind: str) -> str:
    """Return the merchant's sentence for Stripe refusing a key of `kind` with `code`."""
    if code == "insufficient_permissions" and kind == Kind.SECRET:
        return REASONS["secret_key_forbidden"]
    return REASONS[code]


@sensitive_variables("secret")
def ask_stripe(secret: str) -> tuple[AccountFacts | None, str, bool]:
    """Ask Stripe about `secret`, outside any transaction; return (facts, code, transient):
    the facts and "verified" when the key works, else None, our code for the refusal or the
    outage, and whether trying again later could help."""
    try:
        return stripe_account_facts(secret), "verified", False
    except KeyRefused as refusal:
        return None, refusal.code, False
    except StripeUnavailable as unavailable:
        return None, unavailable.code, True


def locked_for_recording(credential_id: int) -> Credential:
    """Return the credential locked for recording what Stripe said, with what its mails
    need; the secret is not read."""
    return (
        # of=("self",): PostgreSQL cannot lock the nullable side of the submitter's join.
        Credential.objects.select_for_update(of=("self",))
        .select_related("merchant", "submitted_by")
        .defer("secret")
        .get(pk=credential_id)
    )
