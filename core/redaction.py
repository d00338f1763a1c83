"""Secrets in free text: how to recognise one, so that notes, reasons and audit details never
carry a key.

Every free-text field that reaches a mail, the audit trail or a log is checked with
`contains_secret()`; `redact()` replaces what matches when the text must be kept anyway (a
refused action is still audited).

Text is normalised before it is matched, so that a key cannot slip past dressed up: full-width
or other compatibility characters (NFKC), zero-width and other invisible format or control
characters, spaces typed after the prefix (`sk_test_ 4eC3…`) and upper case (`SK_LIVE_…`).
"""

import re
import unicodedata

# A secret or restricted Stripe key (any case; spaces allowed after each underscore of the
# prefix), a Kashier secret key (32 hex digits, `$` or a `.env` file's `\$`, more hex digits),
# a Keyhouse API token (`kh_<key id>_…`) or webhook signing secret (`whsec_…`), or a Fernet
# token copied from the database (its fixed version bytes, so exact case).
SECRET_IN_TEXT = re.compile(
    r"(?i:[sr]k_\s*(?:test|live)_\s*[a-z0-9]{8,})"
    r"|(?i:[0-9a-f]{32}\\?\$[0-9a-f]{16,})"
    r"|kh_[a-z2-7]{10}_[A-Za-z0-9_\-]{20,}"
    r"|whsec_[A-Za-z0-9_\-]{20,}"
    r"|gAAAAA[A-Za-z0-9_\-]{20,}"
)

WITHHELD = "[key withheld]"

# Unicode categories of characters that show nothing: format (zero-width space, joiners, soft
# hyphen, byte order mark) and control characters.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc"})


# ASCII's invisible characters: its control characters that are not whitespace. NFKC leaves
# ASCII as it is, so ASCII text (most of it) is normalised by deleting these, in C.
_ASCII_INVISIBLE = {code: None for code in (*range(0x20), 0x7F) if not chr(code).isspace()}


def normalise(text: str) -> str:
    """Return `text` as it is matched: NFKC-normalised, invisible characters removed (ordinary
    whitespace is kept, so words stay apart)."""
    if text.isascii():
        return text.translate(_ASCII_INVISIBLE)
    text = unicodedata.normalize("NFKC", text)
    if text.isprintable():
        # Python's printable excludes every "Other" category, so nothing to remove (a hint's
        # ellipsis makes most audit text non-ASCII, but printable).
        return text
    return "".join(
        char
        for char in text
        if char.isspace() or unicodedata.category(char) not in INVISIBLE_CATEGORIES
    )


def contains_secret(text: str) -> bool:
    """Return True if `text` holds something shaped like a secret key."""
    return bool(SECRET_IN_TEXT.search(normalise(text)))


def redact(text: str) -> str:
    """Return `text` with every secret-shaped run replaced by a marker.

    Text without a secret comes back unchanged; text with one comes back normalised (see
    `normalise`), since that is the form in which the key was found.
    """
    normal = normalise(text)
    if not SECRET_IN_TEXT.search(normal):
        return text
    return SECRET_IN_TEXT.sub(WITHHELD, normal)
