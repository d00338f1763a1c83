"""Fingerprints of secrets: equality without decryption.

Encrypted columns cannot be filtered (each encryption is different), so duplicates are found
through an HMAC of the secret under CREDENTIAL_FINGERPRINT_KEY. A keyed hash, not a plain
SHA-256: without the key, a stolen database cannot be used to confirm a guessed secret.
"""

import hashlib
import hmac

from django.conf import settings


def secret_fingerprint(secret: str) -> str:
    """Return the hex HMAC-SHA256 of `secret` under CREDENTIAL_FINGERPRINT_KEY."""
    key = settings.CREDENTIAL_FINGERPRINT_KEY.encode("utf-8")
    return hmac.new(key, secret.encode("utf-8"), hashlib.sha256).hexdigest()
