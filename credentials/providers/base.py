"""What a provider declares, and what the rest of Keyhouse relies on.

A provider knows its keys: the form that takes them (fields, parsing and fixable messages),
how their mode is known, the hint, which value is fingerprinted, which values are secret
(encrypted, never shown again) and which is public, and how to ask the provider, read-only,
whether they work. Storage, the lifecycle, mails, the helpdesk queue and the audit trail only
see the types below, so none of them asks which provider a key is for.

Every key has one main secret (stored in `Credential.secret`, fingerprinted, hinted) and may
have a second (`Credential.extra_secret`, such as Kashier's Payment API key), plus one public
value shown in full (`Credential.public_key`: Stripe's publishable key, Kashier's merchant id).
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError


@dataclass(frozen=True)
class SubmittedKeys:
    """Keys a provider's form accepted, ready to store. Its repr never shows a secret."""

    provider: str
    mode: str
    kind: str
    secret: str
    hint: str
    public_key: str = ""
    extra_secret: str = ""

    def __repr__(self):
        return (
            f"SubmittedKeys(provider={self.provider!r}, mode={self.mode!r}, kind={self.kind!r}, "
            f"hint={self.hint!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class KeysToCheck:
    """What `verify` is given: a stored credential's keys, decrypted, and what it is for."""

    mode: str
    kind: str
    secret: str
    extra_secret: str = ""
    public_key: str = ""
    requested_integrations: tuple[str, ...] = ()

    def __repr__(self):
        return f"KeysToCheck(mode={self.mode!r}, kind={self.kind!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class AccountFacts:
    """What the provider told about the account behind a key. `None` is unknown.

    `missing_permissions` names, in the provider's own words (Stripe's `rak_…`), what the
    requested integrations need and the key may not do: a key with gaps is still verified.
    """

    account_id: str = ""
    display_name: str = ""
    country: str = ""
    charges_enabled: bool | None = None
    payouts_enabled: bool | None = None
    details_submitted: bool | None = None
    livemode: bool | None = None
    limited_permissions: bool = False
    missing_permissions: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {**self.__dict__, "missing_permissions": list(self.missing_permissions)}

    @classmethod
    def from_dict(cls, data: dict) -> "AccountFacts":
        return cls(**{**data, "missing_permissions": tuple(data.get("missing_permissions", ()))})


@dataclass(frozen=True)
class Answer:
    """What the provider answered, in our own code (never its message, which can echo a key).

    Accepted keys carry `facts`; a refusal has none and `transient` False; an outage (timeout,
    5xx, rate limit) has `transient` True and is retried.
    """

    code: str
    facts: AccountFacts | None = None
    transient: bool = False


class KeyProvider:
    """The interface every provider implements; see the module's docstring."""

    code: str = ""
    label: str = ""
    # Where merchants find their keys, in the words of the provider's dashboard.
    dashboard: str = ""
    # The form of this provider's submit page and the template of its help beside it.
    form_class = None
    help_template: str = ""
    public_key_label: str = ""
    # What the integrator API calls the public value and the second secret in a key's answer
    # (the main secret is always `secret_key`): the provider dashboard's own names.
    api_names: dict[str, str] = {}
    # Where a compromised key is rolled (replaced by a new one), in the dashboard's words.
    roll_where: str = ""
    # The form field beside which a mode error is shown (the one the mode is read from).
    mode_field: str = "secret_key"
    # The second secret's label, and what the key's page says about how it was checked
    # ("" when the provider has no second secret).
    extra_secret_label: str = ""
    extra_secret_checked: str = ""
    # The provider's own answer codes and the merchant's sentence for each; `{…}` fields
    # come from `reason()`.
    reasons: dict[str, str] = {}
    # Outage codes and what they mean in words.
    outages: dict[str, str] = {}
    # Answer codes in a few words, for the helpdesk's queue.
    short_outcomes: dict[str, str] = {}

    def submitted_keys(self, cleaned_data: dict) -> SubmittedKeys:
        """Return the keys in a valid form's cleaned data."""
        raise NotImplementedError

    def submission_refusal(self, keys: SubmittedKeys) -> ValidationError | None:
        """Return why the service refuses these keys, whoever submits them (a policy), or
        None. The error's `params["field"]` names the form field it belongs beside."""
        return None

    def verify(self, keys: KeysToCheck) -> Answer:
        """Ask the provider, read-only, whether the keys work; never raise for its answers."""
        raise NotImplementedError

    # The answer codes that mean the provider accepted the keys (with facts, perhaps gaps);
    # every other code of a decided answer is a refusal.
    accepting_codes: frozenset[str] = frozenset({"verified"})

    def accepts(self, code: str) -> bool:
        return code in self.accepting_codes

    def reason(
        self, code: str, *, kind: str, mode: str = "", facts: AccountFacts | None = None
    ) -> str:
        """Return the merchant's sentence for answer `code`."""
        return self.reasons[code]

    def outage_words(self, code: str) -> str:
        """Return what outage `code` means, in words (unexpected answers keep their code)."""
        return self.outages.get(code, f"unexpected answer: {code}")

    def helpdesk_flags(self, *, kind: str, missing_permissions) -> list[str]:
        """Return the provider's own helpdesk flags for a decided key."""
        return []

    def advice(self, *, kind: str) -> str:
        """Return what the merchant should do better with keys of `kind`, or ""."""
        return ""

    def key_shapes(self, mode: str) -> str:
        """Return what keys of `mode` look like, for a roll's instructions ("" if nothing
        tells the mode)."""
        return ""

    def permission_labels(self, names) -> list[str]:
        """Return each missing permission's name with its human label."""
        return list(names)
