"""Kashier keys: what each of the three values looks like, and why one is refused.

Kashier has no prefix that tells a key's kind or mode: the secret key is 32 hex digits, a
`$` and more hex digits; the Payment API key is a UUID; the merchant id is `MID-<digits>-
<digits>`. Each value is told apart from the others by its shape, so a value pasted in the
wrong field is named and sent to the right one. Every refusal says what is wrong and how to
fix it. Messages never repeat the value.
"""

import functools
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

MAX_KEY_LENGTH = 255
# The hex digits before the `$`, and the fewest after it (the docs' sample is truncated;
# keys seen in integrations have 96).
SECRET_HEAD_LENGTH = 32
MIN_SECRET_TAIL_LENGTH = 32

_SECRET_KEY = re.compile(r"^[0-9A-Fa-f]{32}\$[0-9A-Fa-f]{32,}$")
# The part before the `$`, alone or with too little after it: what a shell or .env file leaves
# of a key whose `$` was not escaped, or a key cut short while copying.
_INCOMPLETE_SECRET_KEY = re.compile(r"^[0-9A-Fa-f]{32}(\$[0-9A-Fa-f]{0,31})?$")
# What is told apart as a secret key in another field: 32 hex digits alone could as well be a
# Payment API key without its dashes, so the `$` is what names it.
_LOOKS_LIKE_A_SECRET_KEY = re.compile(r"^[0-9A-Fa-f]{32}\$[0-9A-Fa-f]*$")
_PAYMENT_API_KEY = re.compile(
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
_MERCHANT_ID = re.compile(r"^MID-(?P<first>[0-9]+)-(?P<second>[0-9]+)$", re.IGNORECASE)
_BEARER = re.compile(r"^bearer\s", re.IGNORECASE)
_STRIPE_KEY = re.compile(r"^[psr]k_(test|live)_", re.IGNORECASE)
# Straight quotes only: curly ones are refused earlier as non-ASCII.
_QUOTES = frozenset("\"'`")
# Fernet tokens start with version byte 0x80, which base64 writes as "gAAAAA".
_FERNET_TOKEN = re.compile(r"^gAAAAA[A-Za-z0-9_\-]+=*$")

API_KEYS_PAGE = "the Kashier merchant dashboard under Integrate now → API keys"
MERCHANT_ID_PLACE = "the top of the Kashier merchant dashboard"

# How each field (by its name in the form) is named in the messages, where its value is
# copied from, and what it looks like.
FIELD_WORDS = {
    "secret_key": "secret key",
    "payment_api_key": "Payment API key",
    "merchant_id": "merchant ID",
}
_WHERE = {
    "secret_key": f"from {API_KEYS_PAGE}",
    "payment_api_key": f"from {API_KEYS_PAGE}",
    "merchant_id": f"from {MERCHANT_ID_PLACE}",
}
SHAPES = {
    "secret_key_shape": "32 digits and letters a to f, a $ sign, then at least 32 more",
    "payment_api_key_shape": (
        "32 digits and letters a to f in five groups joined by dashes (8-4-4-4-12)"
    ),
    "merchant_id_shape": "MID-1234-567 (MID, then two groups of digits, each after a dash)",
}

# Every refusal of a Kashier value, in one place. `{field}` is the field's name in words,
# `{where}` where its value is copied from, and `{…_shape}` what a value looks like (SHAPES).
MESSAGES = {
    "too_long": (
        "This is {length} characters long, more than a Kashier {field} can be ({max_length} "
        "at most). Check that only the {field} was pasted, then paste it again."
    ),
    "non_ascii": (
        "This contains characters that a Kashier {field} never has (such as accented letters "
        "or curly quotes), often picked up by a word processor or email. Copy it again {where}."
    ),
    "quoted": (
        "This has quotation marks around it. Remove the quotation marks, then paste the {field} "
        "again."
    ),
    "bearer_prefix": (
        "Remove “Bearer ” from the start and paste only the {field}: Kashier takes its keys "
        "without Bearer."
    ),
    "escaped_dollar": (
        "This has a backslash before the $ sign, the way .env files escape it. Remove the "
        "backslash: the key itself has only the $ sign. Then paste it again."
    ),
    "stripe_key": (
        "This is a Stripe key, not a Kashier {field}. Copy the {field} {where}; Stripe keys are "
        "submitted on the Stripe keys page."
    ),
    "encrypted_value": (
        "This looks like an encrypted value, not a Kashier {field}. Copy the {field} {where}."
    ),
    "inner_whitespace": (
        "This contains a space, line break or other invisible character inside the {field}. "
        "Paste it again as one unbroken line."
    ),
    "payment_api_key_in_secret_field": (
        "This is the Payment API key; paste it in the Payment API key field, and put the "
        "secret key here: {secret_key_shape}."
    ),
    "secret_key_in_payment_field": (
        "This is the secret key; paste it in the secret key field, and put the Payment API key "
        "here: {payment_api_key_shape}."
    ),
    "merchant_id_in_key_field": (
        "This is the merchant ID; paste it in the merchant ID field, and put the {field} here. "
        f"Both keys are in {API_KEYS_PAGE}."
    ),
    "key_in_merchant_id_field": (
        "This is the {key_name}, not the merchant ID; paste it in the {key_name} field. The "
        f"merchant ID looks like {{merchant_id_shape}}, and is shown at {MERCHANT_ID_PLACE}."
    ),
    "incomplete_secret_key": (
        "This is only part of a Kashier secret key, which has {secret_key_shape}. A .env file "
        "or shell drops what follows the $ sign when it is not escaped. Copy the whole key "
        "{where}."
    ),
    "not_a_kashier_secret_key": (
        "This is not a Kashier secret key, which has {secret_key_shape}. Copy it {where}."
    ),
    "not_a_payment_api_key": (
        "This is not a Kashier Payment API key, which has {payment_api_key_shape}. Copy it {where}."
    ),
    "not_a_merchant_id": (
        "This is not a Kashier merchant ID, which looks like {merchant_id_shape}. Copy it {where}."
    ),
}


@dataclass(frozen=True)
class KashierSecret:
    """A well-formed Kashier secret (the secret key or the Payment API key), exactly as
    Kashier issued it: case matters to the HMAC of the Payment API key. Its repr never shows it.
    """

    value: str

    def __repr__(self):
        return f"KashierSecret(hint={self.hint!r})"

    __str__ = __repr__

    @property
    def hint(self) -> str:
        """Return the first and last four characters, as in `3f9a…c0de`."""
        return f"{self.value[:4]}…{self.value[-4:]}"


def parse_secret_key(value: str) -> KashierSecret:
    """Return the secret key in `value`, or raise ValidationError saying how to fix it."""
    value = _checked(value, "secret_key")
    if _PAYMENT_API_KEY.match(value):
        raise _refusal("payment_api_key_in_secret_field")
    if _MERCHANT_ID.match(value):
        raise _refusal("merchant_id_in_key_field", field=FIELD_WORDS["secret_key"])
    if _INCOMPLETE_SECRET_KEY.match(value):
        raise _refusal("incomplete_secret_key", where=_WHERE["secret_key"])
    if not _SECRET_KEY.match(value):
        raise _refusal("not_a_kashier_secret_key", where=_WHERE["secret_key"])
    return KashierSecret(value)


def parse_payment_api_key(value: str) -> KashierSecret:
    """Return the Payment API key in `value`, or raise ValidationError saying how to fix it."""
    value = _checked(value, "payment_api_key")
    if _LOOKS_LIKE_A_SECRET_KEY.match(value):
        raise _refusal("secret_key_in_payment_field")
    if _MERCHANT_ID.match(value):
        raise _refusal("merchant_id_in_key_field", field=FIELD_WORDS["payment_api_key"])
    if not _PAYMENT_API_KEY.match(value):
        raise _refusal("not_a_payment_api_key", where=_WHERE["payment_api_key"])
    return KashierSecret(value)


def parse_merchant_id(value: str) -> str:
    """Return the merchant id in `value` as `MID-<digits>-<digits>` (any case accepted), or
    raise ValidationError saying how to fix it."""
    value = _checked(value, "merchant_id")
    if _LOOKS_LIKE_A_SECRET_KEY.match(value):
        raise _refusal("key_in_merchant_id_field", key_name=FIELD_WORDS["secret_key"])
    if _PAYMENT_API_KEY.match(value):
        raise _refusal("key_in_merchant_id_field", key_name=FIELD_WORDS["payment_api_key"])
    match = _MERCHANT_ID.match(value)
    if match is None:
        raise _refusal("not_a_merchant_id", where=_WHERE["merchant_id"])
    return f"MID-{match['first']}-{match['second']}"


def _refusal(message: str, **values) -> ValidationError:
    return ValidationError(MESSAGES[message].format(**SHAPES, **values), code=message)


def _checked(value: str, field: str) -> str:
    """Return `value` without surrounding whitespace, or raise ValidationError for the
    mistakes any Kashier field (named `field` in the form) can hold."""
    value = value.strip()
    words = {"field": FIELD_WORDS[field], "where": _WHERE[field]}
    # Before the length: a Kashier secret key, encrypted, is longer than any key.
    if _FERNET_TOKEN.match(value):
        raise _refusal("encrypted_value", **words)
    if len(value) > MAX_KEY_LENGTH:
        raise _refusal("too_long", length=len(value), max_length=MAX_KEY_LENGTH, **words)
    if not value.isascii():
        raise _refusal("non_ascii", **words)
    if value[:1] in _QUOTES or value[-1:] in _QUOTES:
        raise _refusal("quoted", **words)
    # Before the whitespace check: "Bearer <key>" has a space, but the fix is dropping Bearer.
    if _BEARER.match(value):
        raise _refusal("bearer_prefix", **words)
    if "\\$" in value:
        raise _refusal("escaped_dollar")
    if _STRIPE_KEY.match(value):
        raise _refusal("stripe_key", **words)
    if any(char.isspace() or not char.isprintable() for char in value):
        raise _refusal("inner_whitespace", **words)
    return value


def browser_rules() -> dict:
    """Return what the Kashier form's script needs to refuse values as the server does, with
    the server's own words: the messages (with `{name}` placeholders), the shapes and the
    words for each field, the longest value, and each pattern above as a JavaScript regular
    expression. The page passes it to the script with `json_script`."""
    return {
        "messages": MESSAGES,
        "shapes": SHAPES,
        "fields": {
            name: {"field": words, "where": _WHERE[name]} for name, words in FIELD_WORDS.items()
        },
        "max_length": MAX_KEY_LENGTH,
        "quotes": "".join(sorted(_QUOTES)),
        # What Python's str.strip() and `\s` take for whitespace (JavaScript's \s differs).
        "whitespace": _js_whitespace_class(),
        "patterns": {
            name: _js_pattern(pattern)
            for name, pattern in {
                "fernet_token": _FERNET_TOKEN,
                "bearer": _BEARER,
                "stripe_key": _STRIPE_KEY,
                "secret_key": _SECRET_KEY,
                "incomplete_secret_key": _INCOMPLETE_SECRET_KEY,
                "looks_like_a_secret_key": _LOOKS_LIKE_A_SECRET_KEY,
                "payment_api_key": _PAYMENT_API_KEY,
                "merchant_id": _MERCHANT_ID,
            }.items()
        },
    }


@functools.cache
def _js_whitespace_class() -> str:
    """Return the characters Python counts as whitespace as a JavaScript character class.

    Unicode's whitespace is all in its first plane, so that is all that is searched.
    """
    spaces = (chr(code) for code in range(0x10000) if chr(code).isspace())
    return "[" + "".join(f"\\u{ord(space):04x}" for space in spaces) + "]"


def _js_pattern(pattern: re.Pattern) -> dict:
    """Return `pattern` as the source and flags of the same JavaScript regular expression.

    Only what the patterns above use is translated: named groups and `\\s`. Their `$` may
    stay: Python's also matches before a final line break, but values are stripped first.
    """
    source = pattern.pattern.replace("(?P<", "(?<").replace("\\s", _js_whitespace_class())
    return {"source": source, "flags": "i" if pattern.flags & re.IGNORECASE else ""}
