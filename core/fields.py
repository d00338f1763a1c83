"""The encrypted field for secrets, hardened against the encryption library's traps.

django-encrypted-model-fields returns the ciphertext itself when decryption fails, and its
`to_python` decrypts any string that happens to be a valid token, including one a user typed.
This field decrypts only what comes from the database and raises when it cannot.
"""

from cryptography.fernet import InvalidToken
from django.db import models
from encrypted_model_fields import fields as encrypted_fields


class SecretDecryptionError(Exception):
    """Stored ciphertext cannot be decrypted with the keys in FIELD_ENCRYPTION_KEY."""


def decrypt_stored_value(ciphertext: str) -> str:
    """Return the plaintext of a stored token, or raise SecretDecryptionError.

    The library's crypter is looked up at call time (not imported by name), so that a test or
    a key rotation that replaces it is honoured.
    """
    try:
        return encrypted_fields.CRYPTER.decrypt(ciphertext.encode("utf-8")).decode("utf-8")
    except InvalidToken:
        # `from None`: the original exception carries nothing useful and chaining it only
        # lengthens error reports.
        raise SecretDecryptionError(
            "A stored secret cannot be decrypted with the keys in FIELD_ENCRYPTION_KEY. "
            "Add the key it was encrypted with back to the list (the first key encrypts, all "
            "keys decrypt)."
        ) from None


class EncryptedSecretField(encrypted_fields.EncryptedCharField):
    """A CharField stored as a Fernet token that never hands back ciphertext."""

    def to_python(self, value):
        # Values in Python are always plaintext; only from_db_value decrypts.
        return models.CharField.to_python(self, value)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return decrypt_stored_value(value)

    def value_to_string(self, obj):
        # Serialisers (dumpdata, admin history) must not carry the plaintext.
        return ""
