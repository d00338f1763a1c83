"""The integrator API's views: thin, each declaring the scope it needs (`required_scope`, checked
by `api.permissions.IsServiceAccount`); tenant scoping is in `api.selectors`, the secret's
rule and audit in `api.services`."""

from django.utils.cache import patch_cache_control
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api.exceptions import MerchantNotFound, NoSuchAddress
from api.selectors import (
    credentials_for_merchant,
    merchant_get_for_account,
    merchants_for_account,
)
from api.serializers import (
    CredentialSecretSerializer,
    CredentialSerializer,
    ErrorSerializer,
    MerchantSerializer,
)
from api.services import credential_secret_fetch
from audit.services import client_ip
from credentials.models import Mode, Provider
from credentials.selectors import merchants_onboarding_status
from integrations.scopes import Scope
from merchants.models import Merchant


def _error(description: str, code: str, message: str) -> OpenApiResponse:
    return OpenApiResponse(
        ErrorSerializer,
        description=description,
        examples=[
            OpenApiExample(code, value={"error": {"code": code, "message": message}}),
        ],
    )


UNAUTHENTICATED = _error(
    "No token, a malformed Authorization header, or a token that opens nothing: "
    "`not_authenticated`, `malformed_authorization`, `invalid_token`, `token_revoked`, "
    "`token_expired` (a rolled token after its grace period) or `account_expired`. Sent "
    "with `WWW-Authenticate: Bearer`.",
    "invalid_token",
    "This token is not valid: check that the whole token was copied (it starts with kh_), "
    "or ask for a new one.",
)
FORBIDDEN = _error(
    "A call from an address the service account does not allow (`ip_not_allowed`), or "
    "without the scope this call needs (`missing_scope`, naming it).",
    "missing_scope",
    "This call needs the scope credentials:read (read their keys' status (never a secret)), "
    "which service account pos-backend does not have: ask a Keyhouse administrator to add it.",
)
THROTTLED = _error(
    "Too many calls from this service account (settings.API_RATE): wait the seconds in "
    "`Retry-After`.",
    "throttled",
    "Too many calls from this service account: wait 12 seconds (the Retry-After header) "
    "before calling again.",
)
BAD_PAGE = _error(
    "A cursor not taken from a page's `next` or `previous` link (`invalid_cursor`), or a "
    "page_size out of range (`invalid_page_size`).",
    "invalid_cursor",
    "This cursor is not valid: follow the `next` and `previous` links of a page as they are "
    "given, or leave the cursor out for the first page.",
)
MERCHANT_NOT_FOUND = _error(
    "No merchant with this slug is served by this service account: the same answer whether "
    "it exists or not.",
    "not_found",
    str(MerchantNotFound.default_detail),
)
MERCHANT_SLUG = OpenApiParameter(
    "merchant_slug",
    str,
    OpenApiParameter.PATH,
    description="The merchant's slug, as the merchant list gives it.",
)


class ServiceAccountView(APIView):
    """A view of the API: its `required_scope` is checked before anything is read."""

    required_scope = ""


@extend_schema(
    summary="List the merchants this service account serves",
    description="Every merchant when the account serves all, else those listed on it, "
    "oldest first. Needs the scope `merchants:read`.",
    responses={
        200: MerchantSerializer(many=True),
        400: BAD_PAGE,
        401: UNAUTHENTICATED,
        403: FORBIDDEN,
        429: THROTTLED,
    },
)
class MerchantListView(ServiceAccountView, ListAPIView):
    required_scope = Scope.MERCHANTS_READ
    serializer_class = MerchantSerializer
    ordering = "pk"

    def get_queryset(self):
        return merchants_for_account(account=self.request.auth.account)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        statuses = merchants_onboarding_status(merchants=page)
        serializer = self.get_serializer(page, many=True, context={"onboarding_statuses": statuses})
        return self.get_paginated_response(serializer.data)


@extend_schema(
    summary="List a merchant's keys (never a secret)",
    description="Every key of the merchant, whatever its state, newest first: provider, mode, "
    "kind, hint, what verification found and whether it is in use. Needs the scope "
    "`credentials:read`.",
    parameters=[MERCHANT_SLUG],
    responses={
        200: CredentialSerializer(many=True),
        400: BAD_PAGE,
        401: UNAUTHENTICATED,
        403: FORBIDDEN,
        404: MERCHANT_NOT_FOUND,
        429: THROTTLED,
    },
)
class CredentialListView(ServiceAccountView, ListAPIView):
    required_scope = Scope.CREDENTIALS_READ
    serializer_class = CredentialSerializer
    ordering = "-pk"

    def get_queryset(self):
        try:
            merchant = merchant_get_for_account(
                account=self.request.auth.account, slug=self.kwargs["merchant_slug"]
            )
        except Merchant.DoesNotExist:
            raise MerchantNotFound() from None
        return credentials_for_merchant(merchant=merchant)


@extend_schema(
    summary="Fetch the secret of a merchant's active verified key",
    description="The secrets of the merchant's active key of this provider and mode that the "
    "provider verified: `secret_key`, with Stripe's `publishable_key`, or Kashier's "
    "`payment_api_key` and `merchant_id`. Every call is written to the merchant's audit "
    "trail (the service account, the key's hint, the calling address), which the merchant "
    "and the helpdesk read. Sent with `Cache-Control: no-store`: keep the secret in memory "
    "or in your own secret store, and fetch it again when a webhook says the key changed. "
    "Needs the scope `secrets:read`.",
    parameters=[
        MERCHANT_SLUG,
        OpenApiParameter("provider", str, OpenApiParameter.PATH, enum=Provider.values),
        OpenApiParameter("mode", str, OpenApiParameter.PATH, enum=Mode.values),
    ],
    responses={
        200: CredentialSecretSerializer,
        401: UNAUTHENTICATED,
        403: FORBIDDEN,
        404: _error(
            "No active verified key of this provider and mode (`not_found`, the same answer "
            "for a merchant that does not exist or that the account does not serve), or a "
            "provider or mode Keyhouse does not know (`unknown_provider`, `unknown_mode`).",
            "not_found",
            "There is no active verified key of this provider and mode for a merchant with "
            "this slug served by this service account: …",
        ),
        429: THROTTLED,
    },
)
class CredentialSecretView(ServiceAccountView):
    required_scope = Scope.SECRETS_READ

    @sensitive_variables("credential", "secrets", "response")
    def get(self, request, merchant_slug, provider, mode):
        credential, secrets = credential_secret_fetch(
            caller=request.auth,
            merchant_slug=merchant_slug,
            provider=provider,
            mode=mode,
            ip=client_ip(request),
        )
        response = Response(CredentialSecretSerializer((credential, secrets)).data)
        patch_cache_control(response, private=True, no_store=True)
        return response


@extend_schema(exclude=True)
class NoSuchAddressView(APIView):
    """Any other address under /api/: a JSON 404 (never the portal's HTML page), to anyone."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def initial(self, request, *args, **kwargs):
        raise NoSuchAddress()


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 schema, public: it describes the API and holds no data."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI for the schema, public like it, served from this site alone (the sidecar's
    static files and the split view's script), so it keeps to the site's
    Content-Security-Policy: nothing inline, nothing from elsewhere."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    template_name = "api/swagger_ui.html"
