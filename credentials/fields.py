"""The encrypted field for secrets lives in `core.fields` (integrations encrypts webhook signing
secrets with it too); the names stay importable from here, where migrations reference them."""

from core.fields import EncryptedSecretField, SecretDecryptionError, decrypt_stored_value

__all__ = ["EncryptedSecretField", "SecretDecryptionError", "decrypt_stored_value"]
