"""Headers every page of the app sends, whichever app rendered it.

Static files never reach these: WhiteNoise answers them earlier in the chain, so they stay
cacheable.
"""

from django.conf import settings
from django.utils.cache import patch_cache_control


class PermissionsPolicyMiddleware:
    """Send `Permissions-Policy` (settings.PERMISSIONS_POLICY): no page of the portal needs a
    camera, a microphone, the location, payment handlers or USB, so no page, and nothing a
    page might be tricked into loading, gets them."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(allowed)})"
            for feature, allowed in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", self.header)
        return response


class PrivatePagesMiddleware:
    """Send `Cache-Control: private, no-store` unless a page chose its own caching.

    Nearly every page shows a merchant's data (its keys' hints, its team, its audit trail) or
    an account's, and neither a shared proxy nor the browser's back-forward cache may keep a
    copy after sign-out. Error pages are never stored, whatever the page that failed had set:
    a cached 500 or 404 would go on answering after the fault is gone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code >= 400:
            # Whatever caching the failed page had set (`max-age` …) no longer applies.
            response.headers.pop("Cache-Control", None)
        if not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response
