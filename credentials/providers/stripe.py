"""Stripe: a publishable key and a secret or restricted key, the mode in their prefixes.

Stripe tells platforms not to ask for secret keys any more: a restricted key (`rk_…`) with
only the read permissions the integrations need is the safe handover. The submit page lists
those permissions (`stripe_permissions`), verification probes each one, and
STRIPE_SECRET_KEY_POLICY says what happens to a secret key: `allow`, `warn` (accepted, the
merchant is advised and the helpdesk flagged) or `refuse`.
"""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from credentials.forms import KeyField, KeysForm, key_input, secret_input
from credentials.models import HelpdeskFlag, Kind, Mode
from credentials.providers.base import AccountFacts, Answer, KeyProvider, KeysToCheck, SubmittedKeys
from credentials.providers.stripe_client import (
    KeyRefused,
    StripeUnavailable,
    restricted_key_facts,
    stripe_account_facts,
)
from credentials.providers.stripe_keys import (
    MAX_KEY_LENGTH,
    StripeKey,
    browser_rules,
    check_same_mode,
    parse_publishable_key,
    parse_secret_key,
)
from credentials.providers.stripe_permissions import (
    checklist,
    permission_label,
    permissions_for,
)
from merchants.models import Integration

SECRET_KEY_POLICIES = ("allow", "warn", "refuse")
# Credential.verification_reason's length.
REASON_MAX_LENGTH = 500

HOW_TO_RESTRICT = (
    "In the Stripe dashboard, open Developers → API keys → Create restricted key, give it "
    "Read access to the resources listed on this page for the integrations you chose, and "
    "paste the rk_… key here."
)

SECRET_KEY_REFUSED = (
    "Keyhouse does not accept Stripe secret keys (sk_…): a secret key can do anything on the "
    "account, and Stripe recommends a restricted key that can do only what the integration "
    f"needs. {HOW_TO_RESTRICT}"
)

SECRET_KEY_ADVICE = (
    "Stripe recommends a restricted key rather than the secret key, which can do anything on "
    f"the account. {HOW_TO_RESTRICT} Then roll this key to the restricted one."
)

# What merchants and the helpdesk read about Stripe's answers: our own sentences, never
# Stripe's message (which can echo the key).
REASONS = {
    "verified": "Stripe accepted this key.",
    "verified_restricted": (
        "Stripe accepted this restricted key, and it has every read permission the "
        "integrations you chose need. Write permissions are checked when the integration "
        "first uses them."
    ),
    "missing_permissions": (
        "Stripe accepted this restricted key, but it is missing {count} of the read "
        "permissions the integrations you chose need: {names}. Switch them on in the Stripe "
        "dashboard (Developers → API keys → the key's ⋯ menu → Edit key); Keyhouse checks the "
        "key again every day."
    ),
    "limited_permissions": (
        "Stripe accepted this restricted key, but it cannot read the account's details, only "
        "its balance. That is enough to check it works; the helpdesk will tell you if an "
        "integration needs more permissions."
    ),
    "invalid_api_key": (
        "Stripe did not accept this key (mistyped, rolled or deleted). Check the key in the "
        "Stripe dashboard (Developers → API keys), or roll it there, and submit it again."
    ),
    "api_key_expired": (
        "Stripe says this key has expired. Roll it in the Stripe dashboard (Developers → API "
        "keys) and submit the new one."
    ),
    "insufficient_permissions": (
        "This restricted key may read neither the account nor its balance. Give it read "
        "access in the Stripe dashboard, or submit the secret key instead."
    ),
    # A secret key sees everything its account allows: a 403 means the account itself is
    # held back, not that a permission is missing.
    "secret_key_forbidden": (
        "Stripe refused this secret key access to the account's details and balance, which "
        "usually means the account is restricted or under review. Check the account's status "
        "in the Stripe dashboard; the helpdesk has been told."
    ),
    "livemode_mismatch": (
        "This key is marked {mode} but Stripe answered for the other mode. Copy both keys "
        "again from the Stripe dashboard, with Test mode set accordingly, and submit them."
    ),
}

# Stripe's answers in a few words, for the helpdesk's queue.
SHORT_OUTCOMES = {
    "verified": "Verified",
    "verified_restricted": "Verified (restricted key)",
    "missing_permissions": "Verified, permissions missing",
    "limited_permissions": "Verified, limited permissions",
    "invalid_api_key": "Rejected: key not accepted",
    "api_key_expired": "Rejected: key expired",
    "insufficient_permissions": "Rejected: permissions missing",
    "secret_key_forbidden": "Rejected: account restricted",
    "livemode_mismatch": "Rejected: wrong mode",
}

# What each outage code means, in the merchant's words.
OUTAGES = {
    "rate_limited": "too many requests at once",
    "stripe_error": "an error on Stripe's side",
    "connection_failed": "the connection was refused or dropped",
    "timed_out": "no answer in time",
}


def secret_key_policy() -> str:
    return settings.STRIPE_SECRET_KEY_POLICY


def secret_key_refusal(kind: str) -> ValidationError | None:
    """Return the refusal of a secret key under STRIPE_SECRET_KEY_POLICY=refuse, else None."""
    if kind == Kind.SECRET and secret_key_policy() == "refuse":
        return ValidationError(
            SECRET_KEY_REFUSED, code="secret_key_refused", params={"field": "secret_key"}
        )
    return None


class StripeKeysForm(KeysForm):
    secret_fields = ("secret_key",)
    script = "credentials/js/key-form.js"
    field_order = ("publishable_key", "secret_key", "requested_integrations", "note")

    publishable_key = KeyField(
        parse=parse_publishable_key,
        max_length=MAX_KEY_LENGTH,
        label="Publishable key",
        help_text="Starts with pk_test_ or pk_live_.",
        error_messages={
            "required": "Paste the publishable key: it starts with pk_test_ or pk_live_."
        },
        widget=key_input(),
    )
    secret_key = KeyField(
        parse=parse_secret_key,
        max_length=MAX_KEY_LENGTH,
        asks_again=True,
        label="Restricted key (recommended) or secret key",
        help_text=(
            "Starts with rk_ (restricted) or sk_ (secret). It is encrypted when stored and "
            "never shown again; you will see only its last four characters."
        ),
        error_messages={
            "required": "Paste the restricted key (rk_test_ or rk_live_) or the secret key (sk_…)."
        },
        widget=secret_input(),
    )

    def clean(self):
        cleaned = super().clean()
        publishable: StripeKey | None = cleaned.get("publishable_key")
        secret: StripeKey | None = cleaned.get("secret_key")
        if publishable and secret:
            try:
                check_same_mode(publishable=publishable, secret=secret)
            except forms.ValidationError as error:
                # Beside the secret key, where the page's script shows it as it is typed.
                self.add_error("secret_key", error)
        if secret and (refusal := secret_key_refusal(secret.kind)):
            self.add_error("secret_key", refusal)
        return cleaned

    @property
    def browser_rules(self) -> dict:
        """Return the rules and messages the page's script checks keys with as they are typed
        (`stripe_keys.browser_rules`), the permissions each integration needs, and the
        secret-key policy, for `json_script`."""
        return {
            **browser_rules(),
            "permissions": checklist(),
            "secret_key_policy": secret_key_policy(),
            "secret_key_refused": SECRET_KEY_REFUSED,
        }

    @property
    def permissions_by_integration(self) -> list[tuple[str, str, list]]:
        """Return each integration (value, label) with the permissions a restricted key needs
        for it."""
        return [(value, label, permissions_for([value])) for value, label in Integration.choices]


class StripeProvider(KeyProvider):
    code = "stripe"
    label = "Stripe"
    dashboard = "the Stripe dashboard (Developers → API keys)"
    form_class = StripeKeysForm
    help_template = "credentials/help/stripe.html"
    public_key_label = "Publishable key"
    api_names = {"public_key": "publishable_key"}
    roll_where = "the Stripe dashboard (Developers → API keys → ⋯ → Roll key)"
    reasons = REASONS
    outages = OUTAGES
    short_outcomes = SHORT_OUTCOMES
    accepting_codes = frozenset(
        {"verified", "verified_restricted", "missing_permissions", "limited_permissions"}
    )

    def submitted_keys(self, cleaned_data: dict) -> SubmittedKeys:
        publishable: StripeKey = cleaned_data["publishable_key"]
        secret: StripeKey = cleaned_data["secret_key"]
        check_same_mode(publishable=publishable, secret=secret)
        return SubmittedKeys(
            provider=self.code,
            mode=secret.mode,
            kind=secret.kind,
            secret=secret.value,
            hint=secret.hint,
            public_key=publishable.value,
        )

    def submission_refusal(self, keys: SubmittedKeys) -> ValidationError | None:
        return secret_key_refusal(keys.kind)

    @sensitive_variables("keys")
    def verify(self, keys: KeysToCheck) -> Answer:
        """Secret keys read the account (`GET /v1/account`, falling back to the balance);
        restricted keys are probed with one read-only GET per permission the requested
        integrations need (`stripe_permissions`), and read the account only if they may."""
        try:
            if keys.kind == Kind.RESTRICTED:
                probes = {
                    permission.name: permission.probe
                    for permission in permissions_for(keys.requested_integrations)
                }
                facts = restricted_key_facts(keys.secret, probes)
            else:
                facts = stripe_account_facts(keys.secret)
        except KeyRefused as refusal:
            return Answer(refusal.code)
        except StripeUnavailable as unavailable:
            return Answer(unavailable.code, transient=True)
        if facts.livemode is not None and facts.livemode != (keys.mode == Mode.LIVE):
            # Refused, with what Stripe said about the account kept for the helpdesk.
            return Answer("livemode_mismatch", facts=facts)
        if facts.missing_permissions:
            code = "missing_permissions"
        elif keys.kind == Kind.RESTRICTED and keys.requested_integrations:
            code = "verified_restricted"
        elif facts.limited_permissions:
            code = "limited_permissions"
        else:
            code = "verified"
        return Answer(code, facts=facts)

    def reason(self, code: str, *, kind: str, mode: str = "", facts: AccountFacts | None = None):
        if code == "insufficient_permissions" and kind == Kind.SECRET:
            return REASONS["secret_key_forbidden"]
        missing = facts.missing_permissions if facts else ()
        reason = REASONS[code].format(mode=mode, count=len(missing), names=", ".join(missing))
        if len(reason) > REASON_MAX_LENGTH:
            # Too many to name in one sentence: the key's page and the mail list them all.
            reason = REASONS[code].format(
                mode=mode, count=len(missing), names="listed on the key's page"
            )
        return reason

    def helpdesk_flags(self, *, kind: str, missing_permissions) -> list[str]:
        flags = []
        if kind == Kind.SECRET and secret_key_policy() == "warn":
            flags.append(HelpdeskFlag.SECRET_KEY)
        if missing_permissions:
            flags.append(HelpdeskFlag.MISSING_PERMISSIONS)
        return flags

    def advice(self, *, kind: str) -> str:
        return SECRET_KEY_ADVICE if kind == Kind.SECRET and secret_key_policy() != "allow" else ""

    def key_shapes(self, mode: str) -> str:
        return f"pk_{mode}_… and rk_{mode}_… or sk_{mode}_…"

    def permission_labels(self, names) -> list[str]:
        return [permission_label(name) for name in names]
