"""Kashier: a secret key and a Payment API key per mode, and the merchant id they belong to.

No prefix tells a Kashier key's mode: test and live keys live on different hosts, so a key is
checked on the host of the mode the merchant chose, and a key that host refuses is asked of
the other host to tell "wrong mode" from "not a key at all" (`verify`). The check is
`GET /v2/account`, which reads the account and changes nothing (`kashier_client`).

The Payment API key signs order hashes (HMAC-SHA256) and no Kashier call takes it, so it is
checked for its format only; it is first used when the integration signs an order.
"""

from django import forms
from django.views.decorators.debug import sensitive_variables

from credentials.forms import KeyField, KeysForm, key_input, secret_input
from credentials.models import Kind, Mode
from credentials.providers.base import AccountFacts, Answer, KeyProvider, KeysToCheck, SubmittedKeys
from credentials.providers.kashier_client import (
    KashierUnavailable,
    KeyRefused,
    api_base,
    kashier_account,
)
from credentials.providers.kashier_keys import (
    API_KEYS_PAGE,
    MAX_KEY_LENGTH,
    MERCHANT_ID_PLACE,
    KashierSecret,
    browser_rules,
    parse_merchant_id,
    parse_payment_api_key,
    parse_secret_key,
)

# What merchants and the helpdesk read about Kashier's answers: our own sentences, never
# Kashier's message.
REASONS = {
    "verified": "Kashier accepted this secret key for this merchant ID.",
    "merchant_id_mismatch": (
        "Kashier accepted this secret key, but it belongs to another merchant ID than the one "
        f"submitted. Check the merchant ID (shown at {MERCHANT_ID_PLACE}) and copy both keys "
        "from the same merchant's account, then submit them again."
    ),
    "wrong_mode_live": (
        "This is a live key, not a test key: Kashier's live host accepted it and its test host "
        "did not. Submit the keys again with Live chosen, or copy the test keys from "
        f"{API_KEYS_PAGE} (in test mode) and submit those."
    ),
    "wrong_mode_test": (
        "This is a test key, not a live key: Kashier's test host accepted it and its live host "
        "did not. Submit the keys again with Test chosen, or copy the live keys from "
        f"{API_KEYS_PAGE} (in live mode) and submit those."
    ),
    "invalid_secret_key": (
        "Kashier did not accept this secret key (mistyped, regenerated or from another "
        f"account). Copy it again from {API_KEYS_PAGE}, or regenerate it there, check that the "
        "mode chosen is the mode the keys are from, and submit them again."
    ),
}

# What each outage code means, in the merchant's words.
OUTAGES = {
    "rate_limited": "too many requests at once",
    "kashier_error": "an error on Kashier's side",
    "connection_failed": "the connection was refused or dropped",
    "timed_out": "no answer in time",
    "request_failed": "the request could not be sent",
    "unexpected_answer": "an answer Keyhouse could not read",
}

PAYMENT_API_KEY_CHECKED = (
    "Kashier offers no call to check the Payment API key, so only its format was checked; it "
    "is first used when an order is signed with it."
)


class KashierKeysForm(KeysForm):
    secret_fields = ("secret_key", "payment_api_key")
    script = "credentials/js/kashier-form.js"
    field_order = (
        "merchant_id",
        "secret_key",
        "payment_api_key",
        "mode",
        "requested_integrations",
        "note",
    )

    merchant_id = KeyField(
        parse=parse_merchant_id,
        max_length=MAX_KEY_LENGTH,
        label="Merchant ID (MID)",
        help_text=f"Shown at {MERCHANT_ID_PLACE}; it looks like MID-1234-567.",
        error_messages={
            "required": (
                f"Paste the merchant ID: it looks like MID-1234-567, shown at {MERCHANT_ID_PLACE}."
            )
        },
        widget=key_input(),
    )
    secret_key = KeyField(
        parse=parse_secret_key,
        max_length=MAX_KEY_LENGTH,
        asks_again=True,
        label="Secret key",
        help_text=(
            f"In {API_KEYS_PAGE}: 32 digits and letters, a $ sign, then more. It is encrypted "
            "when stored and never shown again; you will see only its first and last four "
            "characters."
        ),
        error_messages={"required": f"Paste the secret key, from {API_KEYS_PAGE}."},
        widget=secret_input(),
    )
    payment_api_key = KeyField(
        parse=parse_payment_api_key,
        max_length=MAX_KEY_LENGTH,
        asks_again=True,
        label="Payment API key",
        help_text=(
            f"In {API_KEYS_PAGE}: digits and letters in five groups joined by dashes. Kashier "
            "uses it to sign orders. It is encrypted when stored and never shown again."
        ),
        error_messages={"required": f"Paste the Payment API key, from {API_KEYS_PAGE}."},
        widget=secret_input(),
    )
    mode = forms.ChoiceField(
        label="Mode of these keys",
        choices=Mode.choices,
        widget=forms.RadioSelect,
        help_text=(
            "Kashier's test and live keys differ: choose the mode the keys were copied in. Test "
            "keys try the integration; live keys take payments."
        ),
        error_messages={
            "required": "Choose Test or Live: the mode the keys were copied in, in the Kashier "
            "dashboard.",
            "invalid_choice": "Choose Test or Live.",
        },
    )

    @property
    def browser_rules(self) -> dict:
        """Return the rules and messages the page's script checks the merchant id and keys
        with as they are typed (`kashier_keys.browser_rules`), for `json_script`."""
        return browser_rules()


class KashierProvider(KeyProvider):
    code = "kashier"
    label = "Kashier"
    dashboard = "the Kashier merchant dashboard (Integrate now → API keys)"
    form_class = KashierKeysForm
    help_template = "credentials/help/kashier.html"
    public_key_label = "Merchant ID"
    api_names = {"public_key": "merchant_id", "extra_secret": "payment_api_key"}
    roll_where = "the Kashier merchant dashboard (Integrate now → API keys, generate a new key)"
    extra_secret_label = "Payment API key"  # noqa: S105  a label, not a secret
    extra_secret_checked = PAYMENT_API_KEY_CHECKED
    reasons = REASONS
    outages = OUTAGES
    short_outcomes = {
        "verified": "Verified",
        "merchant_id_mismatch": "Rejected: other merchant ID",
        "wrong_mode_live": "Rejected: a live key",
        "wrong_mode_test": "Rejected: a test key",
        "invalid_secret_key": "Rejected: key not accepted",
    }
    # The mode is chosen, not read from the keys: a roll's mode error goes beside the choice.
    mode_field = "mode"

    def submitted_keys(self, cleaned_data: dict) -> SubmittedKeys:
        secret: KashierSecret = cleaned_data["secret_key"]
        payment_api_key: KashierSecret = cleaned_data["payment_api_key"]
        return SubmittedKeys(
            provider=self.code,
            mode=cleaned_data["mode"],
            kind=Kind.SECRET,
            secret=secret.value,
            hint=secret.hint,
            public_key=cleaned_data["merchant_id"],
            extra_secret=payment_api_key.value,
        )

    @sensitive_variables("keys")
    def verify(self, keys: KeysToCheck) -> Answer:
        """Read the account on the chosen mode's host; a key it refuses is asked of the other
        mode's host (`_refusal_code`). An accepted key must belong to the submitted merchant
        id when Kashier names one."""
        try:
            account = kashier_account(keys.secret, mode=keys.mode)
        except KeyRefused:
            account = None
        except KashierUnavailable as unavailable:
            return Answer(unavailable.code, transient=True)
        if account is None:
            return Answer(_refusal_code(keys))
        submitted = keys.public_key
        if account.merchant_id and account.merchant_id.upper() != submitted.upper():
            return Answer("merchant_id_mismatch")
        facts = AccountFacts(
            account_id=account.merchant_id or submitted,
            display_name=account.name,
            livemode=keys.mode == Mode.LIVE,
        )
        return Answer("verified", facts=facts)

    def reason(
        self, code: str, *, kind: str, mode: str = "", facts: AccountFacts | None = None
    ) -> str:
        return REASONS[code]


@sensitive_variables("keys")
def _refusal_code(keys: KeysToCheck) -> str:
    """Return the code of a key the chosen mode's host refused: `wrong_mode_<other>` when the
    other mode's host accepts it, else `invalid_secret_key`.

    The chosen host's refusal decides that the key does not work as submitted, so an outage
    of the other host does not hold the answer back: the key is refused, and the reason asks
    to check the mode too.
    """
    other = Mode.TEST if keys.mode == Mode.LIVE else Mode.LIVE
    if api_base(other) == api_base(keys.mode):
        return "invalid_secret_key"
    try:
        kashier_account(keys.secret, mode=other)
    except (KeyRefused, KashierUnavailable):
        return "invalid_secret_key"
    return f"wrong_mode_{other.value}"
