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
        raise ValidationError(
            f"The {secret.type} key is a {secret.mode} key but the publishable key is a "
            f"{publishable.mode} key. Use both keys from the same mode: in the Stripe dashboard, "
            f"switch Test mode {'off' if secret.mode == 'live' else 'on'} and copy both keys "
            "from there.",
            code="mode_mismatch",
        )


def _not_a_stripe_key(field: str, expected: str) -> ValidationError:
    return ValidationError(
        f"This is not a Stripe {field}: it should start with {expected}. {WHERE_TO_COPY}",
        code="not_a_stripe_key",
    )


def _parse(value: str, *, wanted: tuple[str, ...]) -> StripeKey:
    value = value.strip()
    field = "publishable key" if PUBLISHABLE in wanted else "secret key"
    prefixes = [
        f"{prefix}_{mode}_"
        for prefix, key_type in _TYPE_BY_PREFIX.items()
        if key_type in wanted
        for mode in ("test", "live")
    ]
    expected = ", ".join(prefixes[:-1]) + " or " + prefixes[-1]
    if len(value) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"This is {len(value)} characters long, more than any Stripe key "
            f"({MAX_KEY_LENGTH} at most). Check that only the {field} was pasted, then "
            "paste it again.",
            code="too_long",
        )
    if not value.isascii():
        raise ValidationError(
            "This contains characters that Stripe keys never have (such as accented letters "
            "or curly quotes), often picked up by a word processor or email. Copy the key "
            "again from the Stripe dashboard (Developers → API keys).",
            code="non_ascii",
        )
    if any(char.isspace() or not char.isprintable() for char in value):
        if not _LOOKS_LIKE_A_KEY.match(value):
            # Text with spaces that is not a key at all ("my secret key", "Bearer sk_…")
            # gets the message about what a key looks like, not about spaces inside one.
            raise _not_a_stripe_key(field, expected)
        raise ValidationError(
            "This contains a space, line break or other invisible character inside the key. "
            "Paste the key again as one unbroken line.",
            code="inner_whitespace",
        )
    if value[:1] in _QUOTES or value[-1:] in _QUOTES:
        raise ValidationError(
            "This has quotation marks around the key. Remove the quotation marks, then paste "
            "the key again.",
            code="quoted",
        )
    if _FERNET_TOKEN.match(value):
        raise ValidationError(
            "This looks like an encrypted value, not a Stripe key. Stripe keys start with "
            f"{expected}. {WHERE_TO_COPY}",
            code="encrypted_value",
        )
    match = _PREFIXED.match(value)
    if match is None:
        raise _not_a_stripe_key(field, expected)
    key_type = _TYPE_BY_PREFIX[match["type"]]
    if key_type not in wanted:
        if key_type == PUBLISHABLE:
            message = (
                "This is a publishable key; paste it in the publishable key field, and put "
                "the secret key (sk_…) or restricted key (rk_…) here."
            )
        else:
            message = (
                f"This is a {key_type} key; paste it in the secret key field, and put the "
                "publishable key (pk_…) here."
            )
        raise ValidationError(message, code="swapped")
    body = match["body"]
    if not body:
        raise ValidationError(
            f"This is only the beginning of a key (“{match['type']}_{match['mode']}_”). Copy the "
            "whole key with the dashboard's copy button and paste it again.",
            code="too_short",
        )
    if not _BODY.match(body):
        raise ValidationError(
            f"After “{match['type']}_{match['mode']}_” a Stripe key has only letters and digits; "
            f"this one has other characters. {WHERE_TO_COPY}",
            code="invalid_characters",
        )
    if len(body) < MIN_BODY_LENGTH:
        raise ValidationError(
            f"This key is too short: Stripe keys have at least {MIN_BODY_LENGTH} letters and "
            f"digits after “{match['type']}_{match['mode']}_”, this one has {len(body)}. Check "
            "that it was copied in full (the dashboard's copy button copies all of it).",
            code="too_short",
        )
    return StripeKey(value=value, type=str(key_type), mode=match["mode"])
