"""Revealing a stored secret to a helpdesk lead: audited, with a reason and a fresh TOTP code."""

from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEvent
from audit.refusals import Refused, authorize, refusals_audited
from audit.services import audit_record
from core.redaction import contains_secret
from core.validators import refuse_control_characters
from credentials.models import Credential
from credentials.services.notifications import key_target
from teams.permissions import HELPDESK_REVEAL_SECRETS
from teams.two_factor import code_refusal


class RevealedSecrets:
    """The (label, value) pairs a reveal shows, iterable like a list; its repr (what error
    reports, debug logs and template-context dumps print) withholds the values."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self._pairs = list(pairs)

    def __iter__(self):
        return iter(self._pairs)

    def __len__(self):
        return len(self._pairs)

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        labels = ", ".join(label for label, _ in self._pairs)
        return f"RevealedSecrets({labels}: withheld)"

    __str__ = __repr__


@refusals_audited
@sensitive_variables("secrets", "secret", "extra_secret")
def credential_reveal(
    *, credential: Credential, actor, reason: str, otp_token: str, request=None
) -> RevealedSecrets:
    """Return the plaintext secrets to a helpdesk lead, as (label, value) pairs (the key's
    secret, then its provider's second secret if it has one), and audit who, which key and
    why.

    Only active staff holding the helpdesk lead's permission may; anyone else is refused
    (Refused), and the refusal is audited too. The reason is required (ValidationError), and
    so is a current code from the lead's authenticator app (step-up: a signed-in session is not
    enough). A missing, wrong or already used code is refused (Refused) and audited.
    """
    authorize(actor, HELPDESK_REVEAL_SECRETS, about=credential.merchant)
    refuse_control_characters(reason)
    reason = " ".join(reason.split())[:500]
    if len(reason) < 10:
        raise ValidationError("Say why you need the secret (at least 10 characters).")
    if contains_secret(reason):
        raise ValidationError("Describe why without pasting a key.")
    # Checked last: a refused reason does not use up the code.
    refusal = code_refusal(user=actor, otp_token=otp_token)
    if refusal:
        raise Refused(
            f"A fresh code is needed to reveal a secret. {refusal}",
            merchant=credential.merchant,
            permission=HELPDESK_REVEAL_SECRETS,
            action=AuditEvent.Action.KEY_REVEAL_REFUSED,
        )
    secret, extra_secret = (
        Credential.objects.active()
        .filter(pk=credential.pk)
        .values_list("secret", "extra_secret")
        .first()
    ) or (None, None)
    if not secret:
        raise ValidationError("This key is no longer active: its secret was erased.")
    provider = credential.provider_spec
    secrets = [("Secret key" if credential.kind == "secret" else "Restricted key", secret)]
    if extra_secret:
        secrets.append((provider.extra_secret_label, extra_secret))
    audit_record(
        action=AuditEvent.Action.KEY_REVEALED,
        actor=actor,
        merchant_id=credential.merchant_id,
        target=key_target(credential),
        details={"reason": reason},
        request=request,
    )
    return RevealedSecrets(secrets)
