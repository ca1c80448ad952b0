"""The inter-appliance pre-shared key: encryption at rest, fingerprint, derived keys.

The key itself never leaves this module in clear except to derive other keys:
it is encrypted with a key derived from SECRET_KEY before it reaches the
database, and what an administrator sees is a fingerprint that is equal on two
sites exactly when their keys are equal.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MIN_LENGTH = 16
MAX_LENGTH = 512
FINGERPRINT_SALT = b"appliance-failover/psk-fingerprint/v1"
FINGERPRINT_ITERATIONS = 200_000


class KeyUnreadable(Exception):
    """The stored key cannot be decrypted (SECRET_KEY changed since it was saved)."""


def _hkdf(material: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def _fernet() -> Fernet:
    at_rest = _hkdf(settings.SECRET_KEY.encode(), b"appliance-failover/psk-at-rest/v1")
    return Fernet(base64.urlsafe_b64encode(at_rest))


def encrypt(key: str) -> str:
    return _fernet().encrypt(key.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyUnreadable(
            "The stored pre-shared key cannot be decrypted: SECRET_KEY has changed since it was "
            "saved. Save the key again under Management > Security."
        ) from None


def fingerprint(key: str) -> str:
    """A short, slow-to-invert digest that two administrators can read to each other.

    PBKDF2 with a fixed salt keeps it equal across sites while making a guess at
    the key from the fingerprint costly.
    """
    digest = hashlib.pbkdf2_hmac("sha256", key.encode(), FINGERPRINT_SALT, FINGERPRINT_ITERATIONS)
    text = digest.hex()[:16].upper()
    return ":".join(text[i : i + 4] for i in range(0, 16, 4))


def derive(key: str, purpose: str) -> bytes:
    """A key for one purpose (e.g. request signing) derived from the pre-shared key."""
    return _hkdf(key.encode(), f"appliance-failover/{purpose}".encode())
