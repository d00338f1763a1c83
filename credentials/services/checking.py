"""Asking Stripe about a key, and locking the key to record the answer: what verification
and re-verification share."""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.views.decorators.debug import sensitive_variables

from credentials.models import Credential, Kind
from credentials.stripe_client import (
    AccountFacts,
    KeyRefused,
    StripeUnavailable,
    stripe_account_facts,
)

# The code of a key this worker cannot decrypt (a wrong FIELD_ENCRYPTION_KEY).
UNDECRYPTABLE = "undecryptable"

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
    "undecryptable": (
        "Keyhouse could not read this key to check it: the encryption key it was stored with "
        "is not configured where it is checked. The helpdesk has been told and will sort it "
        "out; there is nothing you need to do."
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


@dataclass(frozen=True)
class KnownAnswer:
    """What Stripe answered for one claim, kept when recording it failed (the database went
    away for a moment), so the retry records it without asking Stripe again. Holds no
    secret: a task may carry it."""

    claimed_at: datetime
    code: str
    transient: bool
    facts: AccountFacts | None = None

    def as_task_argument(self) -> dict:
        return {
            "claimed_at": self.claimed_at.isoformat(),
            "code": self.code,
            "transient": self.transient,
            "facts": asdict(self.facts) if self.facts is not None else None,
        }

    @classmethod
    def from_task_argument(cls, data: dict) -> "KnownAnswer":
        facts = data.get("facts")
        return cls(
            claimed_at=datetime.fromisoformat(data["claimed_at"]),
            code=data["code"],
            transient=data["transient"],
            facts=AccountFacts(**facts) if facts is not None else None,
        )


class AnswerNotRecorded(Exception):
    """The database failed while recording Stripe's answer; `known` lets a retry record it."""

    def __init__(self, known: KnownAnswer):
        super().__init__("The verification's outcome could not be recorded; retry with it.")
        self.known = known
