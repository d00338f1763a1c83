"""Secrets in free text: how to recognise one, so that notes, reasons and audit details never
carry a key.

Every free-text field that reaches a mail, the audit trail or a log is checked with
`contains_secret()`; `redact()` replaces what matches when the text must be kept anyway (a
refused action is still audited).
"""

import re

# A secret or restricted Stripe key, or a Fernet token copied from the database.
SECRET_IN_TEXT = re.compile(r"[sr]k_(?:test|live)_[A-Za-z0-9]{8,}|gAAAAA[A-Za-z0-9_\-]{20,}")

WITHHELD = "[key withheld]"


def contains_secret(text: str) -> bool:
    """Return True if `text` holds something shaped like a secret key."""
    return bool(SECRET_IN_TEXT.search(text))


def redact(text: str) -> str:
    """Return `text` with every secret-shaped run replaced by a marker."""
    return SECRET_IN_TEXT.sub(WITHHELD, text)
