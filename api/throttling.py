"""The API's rate, per service account (never per address: an integration's calls may come
from many machines, and many integrations from one NAT).

Counted in the cache (Redis when REDIS_URL is set, so every web process counts together) in
fixed windows of the rate's period, with an atomic increment: concurrent calls can neither
both slip under the limit nor lose a count. Only calls that passed authentication and the
permission checks are counted: a refused token, address or scope never uses up an account's
calls.
"""

import math

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from integrations.services.tokens import Caller


class ServiceAccountRateThrottle(SimpleRateThrottle):
    """At most `DEFAULT_THROTTLE_RATES["service_account"]` (settings.API_RATE, such as
    600/minute) calls per service account per period; beyond, 429 with Retry-After."""

    scope = "service_account"

    def get_rate(self):
        # Read at each call (not once at import, as REST framework does): a changed setting
        # applies at once.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        caller = request.auth
        if not isinstance(caller, Caller):
            return None
        return self.cache_format % {"scope": self.scope, "ident": caller.account.pk}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        key = f"{key}:{window}"
        self.cache.add(key, 0, timeout=self.duration + 1)
        try:
            count = self.cache.incr(key)
        except ValueError:
            # The window's key expired between add and incr: this call opens it again.
            self.cache.add(key, 1, timeout=self.duration + 1)
            count = 1
        self.window_ends_in = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self):
        return max(1, math.ceil(self.window_ends_in))
