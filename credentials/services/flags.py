"""What the helpdesk should look at on a decided key: the flags, and the same flag on the
other merchants' copy of a duplicated key."""

import functools

from django.db import transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from core.sql import column, columns_of, quoted, table
from credentials.models import Credential, HelpdeskFlag, LifecycleState, VerificationState
from credentials.services.checking import UNDECRYPTABLE


def flag_questions(*, account_id: str | None = None) -> dict[str, RawSQL]:
    """Return the two questions `helpdesk_flags` asks the database, as annotations of the
    key's own row: is it active at another merchant too, and does the merchant's verified key
    of the other mode belong to another account? `account_id` is the account the provider
    just named (None: the stored one). The worker asks them while it locks the key, in the
    same query."""
    if account_id is None:
        mismatch = _other_mode_account(column(Credential, "account_id")), ()
    else:
        mismatch = _other_mode_account("%s"), (account_id,)
    return {
        "duplicate_elsewhere": RawSQL(_active_elsewhere(), (), output_field=BooleanField()),  # noqa: S611  values are parameters
        "account_mismatch": RawSQL(*mismatch, output_field=BooleanField()),  # noqa: S611  values are parameters
    }


@functools.cache
def _active_elsewhere() -> str:
    other, this = columns_of(Credential, "other"), columns_of(Credential)
    return (
        f"EXISTS (SELECT 1 FROM {table(Credential)} AS {quoted('other')} "  # noqa: S608  names from the models
        f"WHERE {other('lifecycle_state')} = '{LifecycleState.ACTIVE}' "
        f"AND {other('fingerprint')} = {this('fingerprint')} "
        f"AND {other('merchant')} <> {this('merchant')})"
    )


@functools.cache
def _other_mode_account(account: str) -> str:
    """The question, comparing with `account` (the stored column, or a parameter)."""

    other, this = columns_of(Credential, "other"), columns_of(Credential)
    return (
        f"EXISTS (SELECT 1 FROM {table(Credential)} AS {quoted('other')} "  # noqa: S608  names from the models
        f"WHERE {other('lifecycle_state')} = '{LifecycleState.ACTIVE}' "
        f"AND {other('merchant')} = {this('merchant')} "
        f"AND {other('provider')} = {this('provider')} "
        f"AND {other('verification_state')} = '{VerificationState.VERIFIED}' "
        f"AND {other('mode')} <> {this('mode')} "
        f"AND {other('account_id')} <> '' AND {other('account_id')} <> {account})"
    )


def helpdesk_flags(credential: Credential, *, asked: bool = False) -> list[str]:
    """Return what the helpdesk should look at. The merchant is never told about others.

    `asked`: the credential was loaded with `flag_questions` answered for its current
    account; otherwise they are asked here, in one query."""
    if asked:
        duplicate, mismatch = credential.duplicate_elsewhere, credential.account_mismatch
    else:
        duplicate, mismatch = (
            Credential.objects.filter(pk=credential.pk)
            .annotate(**flag_questions(account_id=credential.account_id))
            .values_list("duplicate_elsewhere", "account_mismatch")
            .get()
        )
    flags = []
    if duplicate:
        flags.append(HelpdeskFlag.DUPLICATE_ELSEWHERE)
    if mismatch and credential.account_id:
        flags.append(HelpdeskFlag.ACCOUNT_MISMATCH)
    if credential.limited_permissions:
        flags.append(HelpdeskFlag.LIMITED_PERMISSIONS)
    flags += credential.provider_spec.helpdesk_flags(
        kind=credential.kind, missing_permissions=credential.missing_permissions
    )
    if credential.verification_code == UNDECRYPTABLE:
        flags.append(HelpdeskFlag.UNDECRYPTABLE)
    return [str(flag) for flag in flags]


def flag_duplicates_elsewhere(*, fingerprint: str, merchant_id: int) -> None:
    """Flag the other merchants' active keys with this fingerprint as well, so the helpdesk
    sees the duplicate from both sides, not only on the key verified last.

    Run after the verification committed, one key per transaction: no worker ever holds the
    locks of two keys at once, so two verifications of the same key cannot deadlock.
    """
    flag = str(HelpdeskFlag.DUPLICATE_ELSEWHERE)
    others = (
        Credential.objects.active()
        .filter(fingerprint=fingerprint)
        .exclude(merchant_id=merchant_id)
        .values_list("pk", flat=True)
    )
    for pk in list(others):
        with transaction.atomic():
            other = (
                Credential.objects.select_for_update()
                .defer("secret", "extra_secret")
                .filter(pk=pk)
                .first()
            )
            if other is not None and other.is_active and flag not in other.helpdesk_flags:
                other.helpdesk_flags = [*other.helpdesk_flags, flag]
                other.save(update_fields=["helpdesk_flags"])
