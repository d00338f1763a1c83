"""What the helpdesk should look at on a decided key: the flags, and the same flag on the
other merchants' copy of a duplicated key."""

from django.db import transaction
from django.db.models import Exists

from credentials.models import Credential, HelpdeskFlag, VerificationState
from credentials.services.checking import UNDECRYPTABLE


def helpdesk_flags(credential: Credential) -> list[str]:
    """Return what the helpdesk should look at. The merchant is never told about others."""
    active_elsewhere = (
        Credential.objects.active()
        .filter(fingerprint=credential.fingerprint)
        .exclude(merchant_id=credential.merchant_id)
    )
    other_mode_accounts = (
        Credential.objects.active()
        .filter(
            merchant_id=credential.merchant_id,
            provider=credential.provider,
            verification_state=VerificationState.VERIFIED,
        )
        .exclude(mode=credential.mode)
        .exclude(account_id="")
        .exclude(account_id=credential.account_id)
    )
    # Both questions in one query: the worker asks them for every key it decides.
    duplicate, mismatch = (
        Credential.objects.filter(pk=credential.pk)
        .annotate(duplicate=Exists(active_elsewhere), mismatch=Exists(other_mode_accounts))
        .values_list("duplicate", "mismatch")
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
