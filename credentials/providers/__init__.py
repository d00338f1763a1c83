"""The providers Keyhouse takes keys for, by code: the only place that knows there are several.

Each provider implements `base.KeyProvider`; everything else asks `provider_for(code)`.
"""

from credentials.providers.base import KeyProvider
from credentials.providers.kashier import KashierProvider
from credentials.providers.stripe import StripeProvider

PROVIDERS: dict[str, KeyProvider] = {
    provider.code: provider for provider in (StripeProvider(), KashierProvider())
}
DEFAULT_PROVIDER = "stripe"


def provider_for(code: str) -> KeyProvider:
    """Return the provider with `code` (KeyError for one Keyhouse does not know)."""
    return PROVIDERS[code]
