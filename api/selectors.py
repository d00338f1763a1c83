"""Reads for the API, always scoped to the merchants a service account serves.

Like the portal's selectors, nothing here loads an encrypted column: only
`api.services.credential_secret_fetch` reads a secret, and audits it.
"""

from django.core.validators import slug_re
from django.db.models import QuerySet

from credentials.models import Credential
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
