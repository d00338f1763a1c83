"""Reads for the API, always scoped to the merchants a service account serves.

Like the portal's selectors, nothing here loads an encrypted column: only
`api.services.credential_secret_fetch` reads a secret, and audits it.
"""

from collections import defaultdict

from django.core.validators import slug_re
from django.db.models import QuerySet

from credentials.models import Credential, LifecycleState, Mode
from credentials.providers import DEFAULT_PROVIDER
from credentials.selectors import FAILED_STATES, merchant_onboarding_status
from integrations.models import ServiceAccount
from merchants.models import Merchant

SLUG_MAX_LENGTH = Merchant._meta.get_field("slug").max_length


def merchants_for_account(*, account: ServiceAccount) -> QuerySet[Merchant]:
    """Return the merchants `account` serves: every one when it serves all, else those
    listed on it."""
    if account.all_merchants:
        return Merchant.objects.all()
    return Merchant.objects.filter(service_accounts=account)


def merchant_get_for_account(*, account: ServiceAccount, slug: str) -> Merchant:
    """Return the merchant with `slug` if `account` serves it; else raise
    Merchant.DoesNotExist, the same for a merchant that exists and one that does not."""
    # A slug no merchant can have (a NUL byte, which PostgreSQL refuses in a query) is
    # answered without asking the database.
    if len(slug) > SLUG_MAX_LENGTH or not slug_re.fullmatch(slug):
        raise Merchant.DoesNotExist
    return merchants_for_account(account=account).get(slug=slug)


def credentials_for_merchant(*, merchant: Merchant) -> QuerySet[Credential]:
    """Return every key of `merchant`, whatever its state, without its secrets."""
    return Credential.objects.filter(merchant=merchant).defer("secret", "extra_secret")


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
