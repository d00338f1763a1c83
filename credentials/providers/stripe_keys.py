"""Stripe API keys: what a key is (kind and mode, from its prefix) and why one is refused.

Every refusal says what is wrong and how to fix it. Messages never repeat the key.
"""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from credentials.models import Kind

MIN_BODY_LENGTH = 24
MAX_KEY_LENGTH = 255

_PREFIXED = re.compile(r"^(?P<type>pk|sk|rk)_(?P<mode>test|live)_(?P<body>.*)$", re.DOTALL)
_BODY = re.compile(r"^[A-Za-z0-9]+$")
_LOOKS_LIKE_A_KEY = re.compile(r"^[psr]k_")
# Straight quotes only: curly ones are refused earlier as non-ASCII.
_QUOTES = frozenset("\"'`")
# Fernet tokens start with version byte 0x80, which base64 writes as "gAAAAA".
_FERNET_TOKEN = re.compile(r"^gAAAAA[A-Za-z0-9_\-]+=*$")

# A key's type: publishable, or one of the kinds a credential stores (the same enum as the
# model's, from the parser to the database).
PUBLISHABLE = "publishable"
_TYPE_BY_PREFIX = {"pk": PUBLISHABLE, "sk": Kind.SECRET, "rk": Kind.RESTRICTED}

WHERE_TO_COPY = "Copy it from the Stripe dashboard (Developers → API keys)."


def _expected(wanted: tuple[str, ...]) -> str:
    prefixes = [
        f"{prefix}_{mode}_"
        for prefix, key_type in _TYPE_BY_PREFIX.items()
        if key_type in wanted
        for mode in ("test", "live")
    ]
    return ", ".join(prefixes[:-1]) + " or " + prefixes[-1]


# How each field is named in the messages, and the prefixes it takes.
_FIELD_WORDS = {
    PUBLISHABLE: {"name": "publishable key", "expected": _expected((PUBLISHABLE,))},
    Kind.SECRET: {"name": "secret key", "expected": _expected((Kind.SECRET, Kind.RESTRICTED))},
}

# Every refusal of a key, in one place: the server formats these, and the key form's script
# (credentials/static/credentials/js/key-form.js) receives them through `browser_rules()`, so
# a mistake reads the same as it is typed and after it is submitted. `{name}` placeholders are
# filled in by both.
MESSAGES = {
    "too_long": (
        "This is {length} characters long, more than any Stripe key ({max_length} at most). "
        "Check that only the {field} was pasted, then paste it again."
    ),
    "non_ascii": (
        "This contains characters that Stripe keys never have (such as accented letters or "
        "curly quotes), often picked up by a word processor or email. Copy the key again from "
        "the Stripe dashboard (Developers → API keys)."
    ),
    "not_a_stripe_key": f"This is not a Stripe {{field}}: it should start with {{expected}}. "
    f"{WHERE_TO_COPY}",
    "inner_whitespace": (
        "This contains a space, line break or other invisible character inside the key. "
        "Paste the key again as one unbroken line."
    ),
    "quoted": (
        "This has quotation marks around the key. Remove the quotation marks, then paste the "
        "key again."
    ),
    "encrypted_value": "This looks like an encrypted value, not a Stripe key. Stripe keys "
    f"start with {{expected}}. {WHERE_TO_COPY}",
    "publishable_in_secret_field": (
        "This is a publishable key; paste it in the publishable key field, and put the secret "
        "key (sk_…) or restricted key (rk_…) here."
    ),
    "secret_in_publishable_field": (
        "This is a {key_type} key; paste it in the secret key field, and put the publishable "
        "key (pk_…) here."
    ),
    "only_the_prefix": (
        "This is only the beginning of a key (“{prefix}”). Copy the whole key with the "
        "dashboard's copy button and paste it again."
    ),
    "invalid_characters": "After “{prefix}” a Stripe key has only letters and digits; this "
    f"one has other characters. {WHERE_TO_COPY}",
    "too_short": (
        "This key is too short: Stripe keys have at least {min_body_length} letters and "
        "digits after “{prefix}”, this one has {body_length}. Check that it was copied in full "
        "(the dashboard's copy button copies all of it)."
    ),
    "mode_mismatch": (
        "The {secret_type} key is a {secret_mode} key but the publishable key is a "
        "{publishable_mode} key. Use both keys from the same mode: in the Stripe dashboard, "
        "switch Test mode {test_mode_switch} and copy both keys from there."
    ),
}
# The ValidationError code of each message (codes predate the catalogue and are kept).
MESSAGE_CODES = {
    **{message: message for message in MESSAGES},
    "publishable_in_secret_field": "swapped",
    "secret_in_publishable_field": "swapped",
    "only_the_prefix": "too_short",
}


@dataclass(frozen=True)
class StripeKey:
    """A well-formed Stripe key. Its repr never shows the key."""

    value: str
    type: str  # PUBLISHABLE or a Kind
    mode: str

    def __repr__(self):
        return f"StripeKey(type={self.type!r}, mode={self.mode!r}, hint={self.hint!r})"

    __str__ = __repr__

    @property
    def kind(self) -> Kind:
        """Return the stored kind of a secret or restricted key."""
        return Kind(self.type)

    @property
    def prefix(self) -> str:
        return self.value[: self.value.index("_", 3) + 1]

    @property
    def hint(self) -> str:
        """Return the prefix and the last four characters, as in `sk_live_…4242`."""
        return f"{self.prefix}…{self.value[-4:]}"


def parse_publishable_key(value: str) -> StripeKey:
    """Return the publishable key in `value`, or raise ValidationError saying how to fix it."""
    return _parse(value, wanted=(PUBLISHABLE,))


def parse_secret_key(value: str) -> StripeKey:
    """Return the secret or restricted key in `value`, or raise ValidationError."""
    return _parse(value, wanted=(Kind.SECRET, Kind.RESTRICTED))


def check_same_mode(*, publishable: StripeKey, secret: StripeKey) -> None:
    """Raise ValidationError when the two keys come from different modes."""
    if publishable.mode != secret.mode:
        raise _refusal(
            "mode_mismatch",
            secret_type=secret.type,
            secret_mode=secret.mode,
            publishable_mode=publishable.mode,
            test_mode_switch="off" if secret.mode == "live" else "on",
        )


def _refusal(message: str, **values) -> ValidationError:
    return ValidationError(MESSAGES[message].format(**values), code=MESSAGE_CODES[message])


def _parse(value: str, *, wanted: tuple[str, ...]) -> StripeKey:
    value = value.strip()
    field = _FIELD_WORDS[PUBLISHABLE if PUBLISHABLE in wanted else Kind.SECRET]
    words = {"field": field["name"], "expected": field["expected"]}
    if len(value) > MAX_KEY_LENGTH:
        raise _refusal("too_long", length=len(value), max_length=MAX_KEY_LENGTH, **words)
    if not value.isascii():
        raise _refusal("non_ascii")
    if any(char.isspace() or not char.isprintable() for char in value):
        if not _LOOKS_LIKE_A_KEY.match(value):
            # Text with spaces that is not a key at all ("my secret key", "Bearer sk_…")
            # gets the message about what a key looks like, not about spaces inside one.
            raise _refusal("not_a_stripe_key", **words)
        raise _refusal("inner_whitespace")
    if value[:1] in _QUOTES or value[-1:] in _QUOTES:
        raise _refusal("quoted")
    if _FERNET_TOKEN.match(value):
        raise _refusal("encrypted_value", **words)
    match = _PREFIXED.match(value)
    if match is None:
        raise _refusal("not_a_stripe_key", **words)
    key_type = _TYPE_BY_PREFIX[match["type"]]
    if key_type not in wanted:
        if key_type == PUBLISHABLE:
            raise _refusal("publishable_in_secret_field")
        raise _refusal("secret_in_publishable_field", key_type=key_type)
    body, prefix = match["body"], f"{match['type']}_{match['mode']}_"
    if not body:
        raise _refusal("only_the_prefix", prefix=prefix)
    if not _BODY.match(body):
        raise _refusal("invalid_characters", prefix=prefix)
    if len(body) < MIN_BODY_LENGTH:
        raise _refusal(
            "too_short", prefix=prefix, min_body_length=MIN_BODY_LENGTH, body_length=len(body)
        )
    return StripeKey(value=value, type=str(key_type), mode=match["mode"])


def browser_rules() -> dict:
    """Return what the key form's script needs to refuse keys as the server does, with the
    server's own words: the messages (with `{name}` placeholders), the words for each field
    and the lengths. The page passes it to the script with `json_script`."""
    return {
        "messages": MESSAGES,
        "fields": {
            "publishable_key": _FIELD_WORDS[PUBLISHABLE],
            "secret_key": _FIELD_WORDS[Kind.SECRET],
        },
        "min_body_length": MIN_BODY_LENGTH,
        "max_length": MAX_KEY_LENGTH,
    }
