"""Reads of credentials, always scoped to a merchant the acting user belongs to.

Lists and pages never load the encrypted column: decrypting is for verification only, and a
page that decrypted every key would grow slower with each one stored.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Func, IntegerField, Max, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from audit.models import AuditEvent
from credentials.models import Credential, LifecycleState, Mode, Provider, VerificationState
from credentials.providers import DEFAULT_PROVIDER

# The provider's answers that leave a key out of use: refused, or not checked yet after retries.
FAILED_STATES = (VerificationState.REJECTED, VerificationState.UNREACHABLE)
# Verification not over: the key page follows it.
WAITING_STATES = (VerificationState.PENDING, VerificationState.VERIFYING)


def _for_display(*, user, merchant) -> QuerySet[Credential]:
    return (
        Credential.objects.filter(merchant=merchant, merchant__memberships__user=user)
        .select_related("merchant", "submitted_by")
        .defer("secret", "extra_secret")
    )


def credential_get_for_member(*, user, merchant, pk: int) -> Credential:
    """Return credential `pk` of `merchant` if `user` is a member there; else raise Http404."""
    try:
        return (
            _for_display(user=user, merchant=merchant)
            .select_related("replaced_by")
            .defer("replaced_by__secret")
            .get(pk=pk)
        )
    except (Credential.DoesNotExist, ValueError):
        raise Http404("No such key.") from None


@dataclass(frozen=True)
class KeyFetch:
    """One fetch of a key's secret through the API: which service account, and when."""

    service_account: str
    occurred_at: datetime


@dataclass(frozen=True)
class KeyFetches:
    """The newest fetches of a key's secret, newest first, and how many older ones there are."""

    recent: list[KeyFetch]
    earlier: int


def credential_fetches(credential: Credential, *, limit: int = 20) -> KeyFetches:
    """Return which service accounts fetched `credential`'s secret through the API and when:
    at most `limit` fetches, newest first, with the count of the earlier ones.

    Read from the audit trail (the API writes a SECRET_FETCHED event naming the key), in one
    query: the window count is taken over every fetch before the limit applies. The caller has
    scoped `credential` to a member already (`credential_get_for_member`).
    """
    rows = list(
        AuditEvent.objects.filter(
            merchant_id=credential.merchant_id,
            action=AuditEvent.Action.SECRET_FETCHED,
            details__credential=credential.pk,
        )
        .annotate(total=Window(Count("pk")))
        .order_by("-occurred_at", "-pk")
        .values_list("details__service_account", "occurred_at", "total")[:limit]
    )
    recent = [
        KeyFetch(service_account=name or "a service account", occurred_at=at)
        for name, at, _ in rows
    ]
    return KeyFetches(recent=recent, earlier=rows[0][2] - len(rows) if rows else 0)


@dataclass(frozen=True)
class ModeKeys:
    """The keys of one provider and mode as the merchant page tells them.

    `current` is the key to follow: the newest active one, except that a key the provider
    refused (or could not check) does not hide an older one still in use: during a roll the
    newest is the replacement being verified, which is what the merchant wants to follow, but
    once it is rejected the old key is the one in use again. `in_use` is the newest verified
    active key, the one the integration uses; `failed_roll` a newer key the provider refused
    or could not check while `in_use` stays; `retired` the last key revoked or replaced.
    """

    provider: str
    mode: str
    label: str
    current: Credential | None
    in_use: Credential | None
    failed_roll: Credential | None
    retired: Credential | None

    @property
    def replacing(self) -> Credential | None:
        """Return the key in use that the current one replaces once verified, or None."""
        if self.current and self.in_use and self.current.pk != self.in_use.pk:
            return self.in_use
        return None

    @property
    def emptied(self) -> bool:
        """Return True if the mode had keys and has no active one now (its key was revoked)."""
        return self.current is None and self.retired is not None


def _newest(queryset: QuerySet[Credential]) -> Subquery:
    return Subquery(queryset.order_by("-submitted_at", "-pk").values("pk")[:1])


@dataclass(frozen=True)
class ProviderKeys:
    """One provider's keys on the merchant page: a `ModeKeys` per mode."""

    provider: str
    label: str
    modes: list[ModeKeys]


def credentials_by_provider(*, user, merchant) -> list[ProviderKeys]:
    """Return the keys of each provider the merchant has keys for (Stripe when it has none
    yet), each with its modes (test, then live), for the merchant page.

    One query for the providers, then two per provider and mode, whatever the number of
    stored keys: the newest active key, the newest the provider did not refuse and the newest
    verified one in one, the last retired key in the other.
    """
    used = set(
        _for_display(user=user, merchant=merchant)
        .order_by()
        .values_list("provider", flat=True)
        .distinct()
    )
    return [
        ProviderKeys(
            provider=code,
            label=label,
            modes=_credentials_by_mode(user=user, merchant=merchant, provider=code),
        )
        for code, label in Provider.choices
        if code in used or (not used and code == DEFAULT_PROVIDER)
    ]


def _credentials_by_mode(*, user, merchant, provider: str) -> list[ModeKeys]:
    active = _for_display(user=user, merchant=merchant).filter(
        provider=provider, lifecycle_state=LifecycleState.ACTIVE
    )
    summaries = []
    for mode, label in Mode.choices:
        slot = active.filter(mode=mode)
        keys = list(
            slot.filter(
                Q(pk=_newest(slot))
                | Q(pk=_newest(slot.exclude(verification_state__in=FAILED_STATES)))
                | Q(pk=_newest(slot.filter(verification_state=VerificationState.VERIFIED)))
            ).order_by("-submitted_at", "-pk")
        )
        newest = keys[0] if keys else None
        # A failed key does not hide one still in use (see ModeKeys).
        current = next((k for k in keys if k.verification_state not in FAILED_STATES), newest)
        in_use = next((k for k in keys if k.verification_state == VerificationState.VERIFIED), None)
        summaries.append(
            ModeKeys(
                provider=provider,
                mode=mode,
                label=label,
                current=current,
                in_use=in_use,
                failed_roll=newest if newest is not None and newest != current else None,
                retired=credential_last_retired(
                    user=user, merchant=merchant, provider=provider, mode=mode
                ),
            )
        )
    return summaries


def credential_fingerprint_active(*, merchant, provider: str, mode: str, fingerprint: str) -> bool:
    """Return True if this secret is already active for the merchant, provider and mode."""
    return (
        Credential.objects.active()
        .filter(merchant=merchant, provider=provider, mode=mode, fingerprint=fingerprint)
        .exists()
    )


def credential_list_active_by_fingerprint(
    *, merchant, provider: str, mode: str, fingerprint: str
) -> list[Credential]:
    """Return the merchant's active keys of this provider and mode holding the secret with
    `fingerprint`, locked, without their secrets (at most one, by the unique constraint)."""
    return list(
        Credential.objects.active()
        .filter(merchant=merchant, provider=provider, mode=mode, fingerprint=fingerprint)
        .select_for_update()
        .defer("secret", "extra_secret")
    )


def credentials_history(*, user, merchant) -> QuerySet[Credential]:
    """Return every key of the merchant, newest first, with who submitted and who revoked,
    and the key that replaced each (its hint only: its secret is never loaded)."""
    return (
        _for_display(user=user, merchant=merchant)
        .select_related("revoked_by", "replaced_by")
        .defer("replaced_by__secret")
        .order_by("-submitted_at", "-pk")
    )


def credential_last_retired(*, user, merchant, provider: str, mode: str) -> Credential | None:
    """Return the most recently revoked or superseded key of a provider and mode, or None."""
    return (
        _for_display(user=user, merchant=merchant)
        .filter(provider=provider, mode=mode)
        .exclude(lifecycle_state=LifecycleState.ACTIVE)
        .order_by("-lifecycle_changed_at", "-pk")
        .first()
    )


class OnboardingStatus:
    """Where a merchant stands, derived from its current keys and the helpdesk's progress."""

    AWAITING_KEYS = "awaiting_keys", "Awaiting keys"
    KEYS_SUBMITTED = "keys_submitted", "Keys submitted"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"
    VERIFIED = "verified", "Verified"
    ENABLED = "enabled", "Enabled"


def merchant_onboarding_status(*, current_credentials, emptied_modes: int = 0) -> tuple[str, str]:
    """Return (code, label) of the onboarding status for the current key of each mode.

    awaiting keys → keys submitted → verified | needs attention → enabled (every current key
    verified and acknowledged by the helpdesk). A mode whose key was revoked and not replaced
    (`emptied_modes` of them) needs attention too, whatever the other mode's key says.
    """
    credentials = [credential for credential in current_credentials if credential is not None]
    if emptied_modes:
        return OnboardingStatus.NEEDS_ATTENTION
    if not credentials:
        return OnboardingStatus.AWAITING_KEYS
    states = {credential.verification_state for credential in credentials}
    if states & {VerificationState.REJECTED, VerificationState.UNREACHABLE}:
        return OnboardingStatus.NEEDS_ATTENTION
    if states & {VerificationState.PENDING, VerificationState.VERIFYING}:
        return OnboardingStatus.KEYS_SUBMITTED
    if all(credential.acknowledged_at for credential in credentials):
        return OnboardingStatus.ENABLED
    return OnboardingStatus.VERIFIED


@dataclass(frozen=True)
class KeyStatus:
    """Whether a key is in use, in words: `code` for styling, `label` for people."""

    code: str
    label: str


def credential_status(credential: Credential) -> KeyStatus:
    """Return whether `credential` is in use, from its lifecycle and its provider's answer.

    An active key is in use only once the provider accepted it: a key it refused reads "Not
    in use", never "Active", though it stays stored for the helpdesk to verify again.
    """
    if credential.lifecycle_state == LifecycleState.REVOKED:
        return KeyStatus("revoked", "Revoked")
    if credential.lifecycle_state == LifecycleState.SUPERSEDED:
        return KeyStatus("superseded", "Replaced by a newer key")
    state, provider = credential.verification_state, credential.get_provider_display()
    if state == VerificationState.VERIFIED:
        return KeyStatus("active", "Active")
    if state == VerificationState.REJECTED:
        return KeyStatus("rejected", f"Not in use ({provider} rejected it)")
    if state == VerificationState.UNREACHABLE:
        return KeyStatus("unreachable", f"Not in use yet ({provider} could not be reached)")
    return KeyStatus("waiting", f"Not in use yet (waiting for {provider})")


# The helpdesk's queue. A key waits for the helpdesk while it is in use and nobody has
# acknowledged it, whatever the provider said; a rejected one waits for the merchant (only they can
# submit a working key), so it is never overdue and never reminded.
WAITING_FOR_HELPDESK = Q(lifecycle_state=LifecycleState.ACTIVE, acknowledged_at__isnull=True)
WAITING_FOR_MERCHANT = WAITING_FOR_HELPDESK & Q(verification_state=VerificationState.REJECTED)


def followup_overdue(*, now) -> Q:
    """Return the condition of a waiting key whose follow-up was due by `now`."""
    return (
        WAITING_FOR_HELPDESK
        & ~Q(verification_state=VerificationState.REJECTED)
        & Q(followup_due_at__lte=now)
    )


def credentials_queue_counts(*, now=None) -> dict[str, int]:
    """Return how many keys wait for the helpdesk (`waiting`) and how many of those are past
    their follow-up (`overdue`), in one query.

    Each is counted from the index that holds exactly those keys, without reading a row: the
    queue's partial index, then the follow-up sweep's (a subquery). Counted with FILTER over
    the waiting keys instead, the overdue condition would read every waiting key's row for
    its verification state, ten thousand of them with a million keys stored.
    """
    now = now or timezone.now()
    overdue = (
        Credential.objects.filter(followup_overdue(now=now))
        .order_by()
        .values(count=Func("pk", function="COUNT", output_field=IntegerField()))
    )
    # aggregate() takes aggregates only: the subquery's one value goes in as its MAX.
    return Credential.objects.filter(WAITING_FOR_HELPDESK).aggregate(
        waiting=Count("pk"),
        overdue=Coalesce(Max(Subquery(overdue)), 0),
    )


def merchants_onboarding_status(*, merchants) -> dict[int, tuple[str, str]]:
    """Return the onboarding status (code, label) of each of `merchants`, by pk, as their
    page in the portal tells it, in two queries whatever the number of merchants and keys.

    The rule is the merchant page's (`credentials.selectors.credentials_by_provider`): for
    each provider the merchant has keys for (Stripe when none) and each mode, the current key
    is the newest active one the provider did not refuse, else the newest active one; a mode
    that has had keys and has no active one now was emptied (its key revoked).
    """
    ids = [merchant.pk for merchant in merchants]
    active = defaultdict(list)
    for credential in (
        Credential.objects.active()
        .filter(merchant_id__in=ids)
        .only("merchant_id", "provider", "mode", "verification_state", "acknowledged_at")
        .order_by("-submitted_at", "-pk")
    ):
        active[credential.merchant_id, credential.provider, credential.mode].append(credential)
    providers, retired = defaultdict(set), set()
    for merchant_id, provider, mode, lifecycle_state in (
        Credential.objects.filter(merchant_id__in=ids)
        .order_by()
        .values_list("merchant_id", "provider", "mode", "lifecycle_state")
        .distinct()
    ):
        providers[merchant_id].add(provider)
        if lifecycle_state != LifecycleState.ACTIVE:
            retired.add((merchant_id, provider, mode))
    statuses = {}
    for merchant_id in ids:
        current, emptied = [], 0
        for provider in providers[merchant_id] or {DEFAULT_PROVIDER}:
            for mode in Mode.values:
                slot = (merchant_id, provider, mode)
                keys = active.get(slot, [])
                in_slot = next(
                    (key for key in keys if key.verification_state not in FAILED_STATES),
                    keys[0] if keys else None,
                )
                current.append(in_slot)
                emptied += in_slot is None and slot in retired
        statuses[merchant_id] = merchant_onboarding_status(
            current_credentials=current, emptied_modes=emptied
        )
    return statuses
