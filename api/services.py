"""The API's one write: fetching a key's secret, which is enforced and audited here, once."""

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from api.exceptions import MissingScope, SecretNotFound, UnknownMode, UnknownProvider
from api.selectors import merchant_get_for_account
from audit.models import AuditEvent
from audit.services import audit_record
from credentials.models import Credential, Mode, VerificationState
from credentials.providers import PROVIDERS, provider_for
from credentials.services.notifications import key_target
from integrations.scopes import Scope
from integrations.services.tokens import Caller
from merchants.models import Merchant


@sensitive_variables("secret", "extra_secret", "secrets")
@transaction.atomic
def credential_secret_fetch(
    *, caller: Caller, merchant_slug: str, provider: str, mode: str, ip: str | None
) -> tuple[Credential, dict[str, str]]:
    """Return the active verified key of `provider` and `mode` of the merchant with
    `merchant_slug`, and its values by API name (`secret_key`, and the others as the
    provider's `api_names` call them), to the service account of `caller`; write a
    SECRET_FETCHED event to the merchant's audit trail naming the account, the key's hint
    and `ip`.

    Refused with PermissionDenied (`missing_scope`) without the secrets:read scope, with
    UnknownProvider or UnknownMode for a provider or mode Keyhouse does not know, and with
    SecretNotFound, always the same, for a merchant that does not exist, one the account may
    not see, and one with no active verified key in that mode. A superseded or revoked key is
    never returned: its secret is erased.
    """
    account = caller.account
    if not account.has_scope(Scope.SECRETS_READ):
        raise MissingScope(account=account, scope=Scope.SECRETS_READ)
    if provider not in PROVIDERS:
        raise UnknownProvider()
    if mode not in Mode.values:
        raise UnknownMode()
    try:
        merchant = merchant_get_for_account(account=account, slug=merchant_slug)
    except Merchant.DoesNotExist:
        raise SecretNotFound() from None
    in_use = Credential.objects.active().filter(
        merchant=merchant,
        provider=provider,
        mode=mode,
        verification_state=VerificationState.VERIFIED,
    )
    credential = in_use.defer("secret", "extra_secret").order_by("-submitted_at", "-pk").first()
    if credential is None:
        raise SecretNotFound()
    # The one row, read again with its secrets: a key retired since the line above (its
    # secret erased) is not found.
    secret, extra_secret = in_use.filter(pk=credential.pk).values_list(
        "secret", "extra_secret"
    ).first() or (None, None)
    if not secret:
        raise SecretNotFound()
    names = provider_for(provider).api_names
    secrets = {"secret_key": secret}
    if "public_key" in names:
        secrets[names["public_key"]] = credential.public_key
    if "extra_secret" in names and extra_secret:
        secrets[names["extra_secret"]] = extra_secret
    audit_record(
        action=AuditEvent.Action.SECRET_FETCHED,
        merchant=merchant,
        target=key_target(credential),
        details={
            "service_account": account.name,
            "hint": credential.secret_hint,
            "credential": credential.pk,
        },
        ip=ip,
    )
    return credential, secrets
