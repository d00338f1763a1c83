"""Asking a key's provider about it, and locking the key to record the answer: what
verification and re-verification share."""

import functools
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models.expressions import RawSQL
from django.views.decorators.debug import sensitive_variables

from core.sql import Selection, column, columns_of, load_row, quoted, table
from credentials.models import Credential
from credentials.providers import provider_for
from credentials.providers.base import AccountFacts, Answer, KeysToCheck
from merchants.models import Merchant
from teams.models import User

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


def locked_for_recording(credential_id: int, **questions: RawSQL) -> Credential:
    """Return the credential locked for recording what the provider said, with its merchant
    and submitter (what its mails need); the secret is not read. `questions` (annotations of
    the key's row: EXISTS subqueries) are answered in the same query, as attributes.

    What `select_for_update(of=("self",)).select_related("merchant", "submitted_by")
    .defer("secret", "extra_secret").annotate(**questions).get(pk=credential_id)` does, in
    SQL written once (core.sql): the worker runs it for every verification, and compiling
    it cost more CPU than the rest of recording the outcome (docs/benchmarks.md).
    """
    names = tuple(questions)
    sql = _locked_sql(tuple((name, questions[name].sql) for name in names))
    params = [*(param for name in names for param in questions[name].params), credential_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise Credential.DoesNotExist(f"No credential {credential_id}.")
    (credential, merchant, submitted_by), answers = load_row(row, *_selections())
    Credential.merchant.field.set_cached_value(credential, merchant)
    Credential.submitted_by.field.set_cached_value(credential, submitted_by)
    for name, value in zip(names, answers, strict=True):
        question = questions[name]
        converters = connection.ops.get_db_converters(question)
        for converter in converters + question.get_db_converters(connection):
            value = converter(value, question, connection)
        setattr(credential, name, value)
    return credential


@functools.cache
def _selections() -> tuple[Selection, Selection, Selection]:
    return (
        Selection(Credential, deferred=("secret", "extra_secret")),
        Selection(Merchant),
        Selection(User),
    )


@functools.cache
def _locked_sql(questions: tuple[tuple[str, str], ...]) -> str:
    key, merchant, submitter = _selections()
    this = columns_of(Credential)
    answers = "".join(f", ({sql}) AS {quoted(name)}" for name, sql in questions)
    lock = ""
    if connection.features.has_select_for_update:
        # Only the key's row: PostgreSQL cannot lock the nullable side of the submitter's join.
        lock = f" FOR UPDATE OF {table(Credential)}"
    return (
        f"SELECT {key.columns}, {merchant.columns}, {submitter.columns}{answers} "  # noqa: S608  names from the models
        f"FROM {table(Credential)} "
        f"INNER JOIN {table(Merchant)} ON {column(Merchant, 'id')} = {this('merchant')} "
        f"LEFT OUTER JOIN {table(User)} ON {column(User, 'id')} = {this('submitted_by')} "
        f"WHERE {this('id')} = %s{lock}"
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
