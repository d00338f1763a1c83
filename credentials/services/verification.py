"""Verifying a submitted key with its provider, in the worker, and recording what it learned.

The provider is asked outside any transaction; the outcome is recorded only if this worker's claim
still stands; a decided outcome queues both mails (`notifications`), supersedes the keys a
verified one replaces (`lifecycle`) and starts the helpdesk's follow-up clock.
"""

import functools
import random
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEvent
from audit.services import audit_record
from core.sql import Selection, column, quoted, save_fields, table
from credentials.fields import SecretDecryptionError
from credentials.models import Credential, HelpdeskFlag, LifecycleState, VerificationState
from credentials.providers.base import Answer
from credentials.services.checking import (
    REASONS,
    UNDECRYPTABLE,
    AnswerNotRecorded,
    KnownAnswer,
    ask_provider,
    locked_for_recording,
)
from credentials.services.events import credential_event
from credentials.services.flags import flag_duplicates_elsewhere, flag_questions, helpdesk_flags
from credentials.services.lifecycle import (
    active_verified_others,
    next_reverification,
    next_unreachable_recheck,
    older_in_slot_exists,
    supersede_older_keys,
)
from credentials.services.notifications import (
    KeyEvent,
    key_event_notify,
    key_target,
    unsent_mail_about_key,
)
from integrations.scopes import EventType
from integrations.services.events import endpoints_exist

# The webhook event of each decided outcome (an unreachable provider is the helpdesk's).
OUTCOME_EVENTS = {
    VerificationState.VERIFIED: EventType.VERIFIED,
    VerificationState.REJECTED: EventType.REJECTED,
}


class VerifyOutcome(StrEnum):
    """Where one verification attempt left the key."""

    SKIPPED = "skipped"  # not this worker's to verify (decided, revoked, claimed elsewhere)
    PENDING = VerificationState.PENDING.value  # a transient failure: another try is due
    VERIFIED = VerificationState.VERIFIED.value
    REJECTED = VerificationState.REJECTED.value
    UNREACHABLE = VerificationState.UNREACHABLE.value


@dataclass(frozen=True)
class VerifyResult:
    """What one verification attempt did. `retry_in` is set when another try is due."""

    state: VerifyOutcome
    retry_in: float | None = None


def _backoff_seconds(attempt: int) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random."""
    delay = settings.VERIFY_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311  jitter, not cryptography


def _claim_for_verification(credential_id: int, now) -> tuple[Credential | None, bool]:
    """Mark the credential as being verified by this worker; return it (None if it must not
    be) and whether its secret could be decrypted (if not, it is loaded without it).

    It must not be when it is gone, no longer active, already decided (a redelivered or
    duplicated task), being verified by another worker whose claim is fresh, or waiting for
    its back-off to pass. One conditional update that returns the row it claimed: of two
    workers with the same task, one claims, the other finds nothing to update.
    """
    stale_before = now - timedelta(seconds=settings.VERIFY_STALE_AFTER)
    at = connection.ops.adapt_datetimefield_value
    params = (at(now), credential_id, at(stale_before), at(now + timedelta(seconds=1)))
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None, True
    try:
        return _claimed().load(row), True
    except SecretDecryptionError:
        # A wrong FIELD_ENCRYPTION_KEY here: recorded as such, never retried in a loop.
        credential = (
            Credential.objects.filter(pk=credential_id, verification_claimed_at=now)
            .defer("secret", "extra_secret")
            .first()
        )
        return credential, False


@functools.cache
def _claimed() -> Selection:
    return Selection(Credential)


@functools.cache
def _claim_sql() -> str:
    """The claim, written by hand (core.sql): UPDATE … RETURNING claims and loads the key in
    one statement, where the ORM needs an update and a select."""

    def name(field):
        return quoted(Credential._meta.get_field(field).column)

    state, claimed_at, attempts = (
        name("verification_state"),
        name("verification_claimed_at"),
        name("verification_attempts"),
    )
    next_attempt = name("verification_next_attempt_at")
    returning = ", ".join(quoted(field.column) for field in _claimed().fields)
    return (
        f"UPDATE {table(Credential)} SET {state} = '{VerificationState.VERIFYING}', "  # noqa: S608  names from the models
        f"{claimed_at} = %s, {attempts} = {attempts} + 1 "
        f"WHERE {name('id')} = %s AND {name('lifecycle_state')} = '{LifecycleState.ACTIVE}' "
        f"AND {state} IN ('{VerificationState.PENDING}', '{VerificationState.VERIFYING}') "
        # A claim still fresh is another worker's.
        f"AND NOT ({state} = '{VerificationState.VERIFYING}' AND {claimed_at} IS NOT NULL "
        f"AND {claimed_at} > %s) "
        # Waiting for its back-off.
        f"AND NOT ({next_attempt} IS NOT NULL AND {next_attempt} > %s) "
        f"RETURNING {returning}"
    )


# The claimed credential holds the decrypted secret: kept out of error reports.
@sensitive_variables("credential")
def credential_verify(*, credential_id: int, known: KnownAnswer | None = None) -> VerifyResult:
    """Verify one credential with its provider and record what was learned. Idempotent.

    Called by the worker. The provider is asked outside any transaction (no lock is held while
    waiting for the network); the outcome is recorded only if this worker's claim still
    stands. A decided outcome queues the merchant's and the helpdesk's mail in the same
    transaction; the helpdesk's follow-up clock starts when its mail has gone out. Transient
    failures ask for a retry with back-off until VERIFY_MAX_ATTEMPTS, then the key is marked
    unreachable.

    With `known` (a retry after the database failed while recording), the provider is not asked
    again: its answer is recorded if the claim it was given for still stands. A database
    failure while recording raises AnswerNotRecorded carrying the answer.
    """
    if known is None:
        now = timezone.now()
        credential, readable = _claim_for_verification(credential_id, now)
        if credential is None:
            return VerifyResult(state=VerifyOutcome.SKIPPED)
        answer = ask_provider(credential) if readable else Answer(UNDECRYPTABLE)
        known = KnownAnswer(
            claimed_at=credential.verification_claimed_at,
            code=answer.code,
            transient=answer.transient,
            facts=answer.facts,
        )
        del credential
    try:
        return _record_answer(credential_id, known)
    except (OperationalError, InterfaceError):
        raise AnswerNotRecorded(known) from None


def _record_answer(credential_id: int, known: KnownAnswer) -> VerifyResult:
    """Record the provider's answer for this worker's claim, in one transaction (see
    credential_verify)."""
    facts, code, transient, claimed_at = known.facts, known.code, known.transient, known.claimed_at

    with transaction.atomic():
        # What recording the outcome depends on, asked with the lock in one query: the flags'
        # two questions, whether the key replaces older ones, whether any webhook endpoint
        # sees the merchant and whether earlier mail about the key is still unsent.
        credential = locked_for_recording(
            credential_id,
            **flag_questions(account_id=facts.account_id if facts is not None else None),
            replaces_older=older_in_slot_exists(),
            has_webhook_endpoints=endpoints_exist(column(Credential, "merchant")),
            mail_waiting=unsent_mail_about_key(),
        )
        # Skipped when another worker took the claim over, or when the key was revoked or
        # superseded while the provider was being asked: no outcome mail for a key that is gone.
        if (
            credential.verification_state != VerificationState.VERIFYING
            or credential.verification_claimed_at != claimed_at
            or not credential.is_active
        ):
            return VerifyResult(state=VerifyOutcome.SKIPPED)
        if transient and credential.verification_attempts < settings.VERIFY_MAX_ATTEMPTS:
            delay = _backoff_seconds(credential.verification_attempts)
            credential.verification_state = VerificationState.PENDING
            credential.verification_next_attempt_at = timezone.now() + timedelta(seconds=delay)
            credential.verification_code = code
            provider = credential.provider_spec
            credential.verification_reason = REASONS["retrying"].format(
                provider=provider.label, what=provider.outage_words(code)
            )
            credential.save(
                update_fields=[
                    "verification_state",
                    "verification_next_attempt_at",
                    "verification_code",
                    "verification_reason",
                ]
            )
            return VerifyResult(state=VerifyOutcome.PENDING, retry_in=delay)
        previous_code = credential.verification_code
        _record_outcome(credential, facts=facts, code=code, transient=transient)
        telling = _worth_telling(credential, previous_code=previous_code)
        # The outcome's event before the superseded keys' (a roll reads: verified, then the
        # old key superseded).
        if (
            telling
            and credential.has_webhook_endpoints
            and credential.verification_state in OUTCOME_EVENTS
        ):
            credential_event(credential, OUTCOME_EVENTS[credential.verification_state])
        replaced = (
            supersede_older_keys(credential)
            if credential.verification_state == VerificationState.VERIFIED
            and credential.replaces_older
            else []
        )
        audit_record(
            action=AuditEvent.Action.KEY_VERIFICATION,
            merchant=credential.merchant,
            target=key_target(credential),
            details={
                "outcome": credential.verification_state,
                "code": credential.verification_code,
                "account": credential.account_id,
                "attempts": credential.verification_attempts,
            },
        )
        if telling:
            _notify_outcome(credential, replaced=replaced)
    return VerifyResult(state=VerifyOutcome(credential.verification_state))


# What recording an outcome changes (`_record_outcome`).
RECORDED_FIELDS = [
    "next_reverify_at",
    "account_id",
    "account_name",
    "account_country",
    "charges_enabled",
    "payouts_enabled",
    "details_submitted",
    "livemode",
    "limited_permissions",
    "missing_permissions",
    "verification_state",
    "verification_code",
    "verification_reason",
    "verification_next_attempt_at",
    "checked_at",
    "helpdesk_flags",
]


def _record_outcome(credential: Credential, *, facts, code: str, transient: bool) -> None:
    decided_at = timezone.now()
    provider = credential.provider_spec
    if code == UNDECRYPTABLE:
        state, reason = VerificationState.UNREACHABLE, REASONS[UNDECRYPTABLE]
    elif transient:
        state = VerificationState.UNREACHABLE
        reason = REASONS["unreachable"].format(
            provider=provider.label,
            attempts=credential.verification_attempts,
            what=provider.outage_words(code),
        )
    else:
        # The provider decided: it accepted the keys (perhaps with gaps) or refused them.
        accepted = facts is not None and provider.accepts(code)
        state = VerificationState.VERIFIED if accepted else VerificationState.REJECTED
        reason = credential.outcome_reason(code, facts)
    if facts is not None:
        credential.account_id = facts.account_id
        credential.account_name = facts.display_name[:255]
        credential.account_country = facts.country
        credential.charges_enabled = facts.charges_enabled
        credential.payouts_enabled = facts.payouts_enabled
        credential.details_submitted = facts.details_submitted
        credential.livemode = facts.livemode
        credential.limited_permissions = facts.limited_permissions
        credential.missing_permissions = list(facts.missing_permissions)
    credential.verification_state = state
    credential.verification_code = code
    credential.verification_reason = reason
    credential.verification_next_attempt_at = None
    credential.checked_at = decided_at
    credential.helpdesk_flags = helpdesk_flags(credential, asked=True)
    if HelpdeskFlag.DUPLICATE_ELSEWHERE in credential.helpdesk_flags:
        fingerprint, merchant_id = credential.fingerprint, credential.merchant_id
        transaction.on_commit(
            lambda: flag_duplicates_elsewhere(fingerprint=fingerprint, merchant_id=merchant_id)
        )
    if state == VerificationState.VERIFIED:
        credential.next_reverify_at = next_reverification(decided_at)
    elif state == VerificationState.UNREACHABLE:
        # Not a dead end: the re-check sweep verifies it again, less and less often.
        credential.next_reverify_at = next_unreachable_recheck(
            decided_at, round_=credential.verification_round
        )
    else:
        credential.next_reverify_at = None
    # Not through the ORM (core.sql): compiling this update of 16 columns cost more CPU
    # than the database takes to run it, for every verification.
    save_fields(credential, RECORDED_FIELDS)


def _worth_telling(credential: Credential, *, previous_code: str) -> bool:
    """Return whether this outcome is news: the first round's always is; a later round (a
    re-check of an unreachable key, Verify again) only when it ends otherwise than the last."""
    return not credential.verification_round or credential.verification_code != previous_code


def _notify_outcome(credential: Credential, *, replaced=()) -> None:
    """Queue the outcome mails (once each, whatever the number of deliveries of the task)."""
    still_in_use = (
        active_verified_others(credential).first()
        if credential.verification_state != VerificationState.VERIFIED
        else None
    )
    submitter = credential.submitted_by.email if credential.submitted_by else ""
    key_event_notify(
        credential=credential,
        event=KeyEvent.VERIFICATION,
        merchant_to=[submitter] if submitter else [],
        occurrence=str(credential.verification_round or ""),
        send_in_process=True,
        none_waiting=not credential.mail_waiting,
        replaced=list(replaced),
        still_in_use=still_in_use,
    )
