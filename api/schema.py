"""What drf-spectacular cannot work out alone: the bearer scheme of the service tokens.

Imported by `api.apps.ApiConfig.ready` (an extension registers itself when its class is
defined).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "kh_<key id>_<secret>",
            "description": "A service account's token, as `Authorization: Bearer kh_…`. "
            "Shown once when the account is created or its token rolled; a rolled token "
            "keeps working for its grace period.",
        }
