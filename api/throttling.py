"""Rates per service account (placeholder until the API lands)."""

from rest_framework.throttling import SimpleRateThrottle


class ServiceAccountRateThrottle(SimpleRateThrottle):
    scope = "service_account"

    def get_cache_key(self, request, view):
        return None
