"""Asking a key's provider about it, and locking the key to record the answer: what
verification and re-verification share."""

from dataclasses import dataclass
from datetime import datetime

from django.views.decorators.debug import sensitive_variables

from credentials.models import Credential
from credentials.providers import provider_for
from credentials.providers.base import AccountFacts, Answer, KeysToCheck

# The code of a key this worker cannot decrypt (a wrong FIELD_ENCRYPTION_KEY).
UNDECRYPTABLE = "undecryptable"

# What merchants and the helpdesk read about outcomes every provider shares (each provider
# has its own sentences for its answers): our own words, never the provider's message
# (which can echo the key).
REASONS = {
    "retrying": "{provider} did not answer ({what}); trying again shortly.",
    "no_longer_valid": (
        "{provider} no longer accepts this key, which worked before: {reason} Until a new key "
        "is submitted, the integrations that use it stop working."
    ),
    "undecryptable": (
        "Keyhouse could not read this key to check it: the encryption key it was stored with "
        "is not configured where it is checked. The helpdesk has been told and will sort it "
        "out; there is nothing you need to do."
    ),
    "unreachable": (
        "{provider} could not be reached after {attempts} attempts ({what}). The helpdesk has "
        "been told and will verify the key; there is nothing you need to do."
    ),
}


@sensitive_variables("keys")
def ask_provider(credential: Credential) -> Answer:
    """Ask the credential's provider about its keys (decrypted on the instance), outside any
    transaction; never raises for the provider's answers."""
    keys = KeysToCheck(
        mode=credential.mode,
        kind=credential.kind,
        secret=credential.secret,
        extra_secret=credential.extra_secret or "",
        public_key=credential.public_key,
        requested_integrations=tuple(credential.requested_integrations or ()),
    )
    return provider_for(credential.provider).verify(keys)


def locked_for_recording(credential_id: int, **questions) -> Credential:
    """Return the credential locked for recording what the provider said, with what its mails
    need; the secret is not read. `questions` (annotations of the key's row: EXISTS
    subqueries) are answered in the same query."""
    return (
        # of=("self",): PostgreSQL cannot lock the nullable side of the submitter's join.
        Credential.objects.select_for_update(of=("self",))
        .select_related("merchant", "submitted_by")
        .defer("secret", "extra_secret")
        .annotate(**questions)
        .get(pk=credential_id)
    )


@dataclass(frozen=True)
class KnownAnswer:
    """What the provider answered for one claim, kept when recording it failed (the database
    went away for a moment), so the retry records it without asking again. Holds no secret:
    a task may carry it."""

    claimed_at: datetime
    code: str
    transient: bool
    facts: AccountFacts | None = None

    def as_task_argument(self) -> dict:
        return {
            "claimed_at": self.claimed_at.isoformat(),
            "code": self.code,
            "transient": self.transient,
            "facts": self.facts.as_dict() if self.facts is not None else None,
        }

    @classmethod
    def from_task_argument(cls, data: dict) -> "KnownAnswer":
        facts = data.get("facts")
        return cls(
            claimed_at=datetime.fromisoformat(data["claimed_at"]),
            code=data["code"],
            transient=data["transient"],
            facts=AccountFacts.from_dict(facts) if facts is not None else None,
        )


class AnswerNotRecorded(Exception):
    """The database failed while recording the provider's answer; `known` lets a retry record it."""

    def __init__(self, known: KnownAnswer):
        super().__init__("The verification's outcome could not be recorded; retry with it.")
        self.known = known
