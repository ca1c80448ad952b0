"""The inter-appliance pre-shared key: encryption at rest, fingerprint, derived keys.

The key itself never leaves this module in clear except to derive other keys:
it is encrypted with a key derived from SECRET_KEY before it reaches the
database, and what an administrator sees is a fingerprint that is equal on two
sites exactly when their keys are equal.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets

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


PSK_AT_REST = "psk-at-rest/v1"


def _fernet(purpose: str) -> Fernet:
    at_rest = _hkdf(settings.SECRET_KEY.encode(), f"appliance-failover/{purpose}".encode())
    return Fernet(base64.urlsafe_b64encode(at_rest))


def seal(secret: str, purpose: str) -> str:
    """Encrypt a secret for the database, under a key derived from SECRET_KEY for `purpose`.

    Each kind of secret (the pre-shared key, a DNS server's TSIG secret) has its
    own purpose, so one can never be decrypted as the other.
    """
    return _fernet(purpose).encrypt(secret.encode()).decode()


def unseal(token: str, purpose: str, *, what: str, where: str) -> str:
    """The secret `seal` stored; KeyUnreadable names `what` it is and `where` to save it again."""
    try:
        return _fernet(purpose).decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyUnreadable(
            f"The stored {what} cannot be decrypted: SECRET_KEY has changed since it was "
            f"saved. Save it again under {where}."
        ) from None


def encrypt(key: str) -> str:
    return seal(key, PSK_AT_REST)


def decrypt(token: str) -> str:
    return unseal(token, PSK_AT_REST, what="pre-shared key", where="Management > Security")


def fingerprint(key: str) -> str:
    """A short, slow-to-invert digest that two administrators can read to each other.

    PBKDF2 with a fixed salt keeps it equal across sites while making a guess at
    the key from the fingerprint costly.
    """
    digest = hashlib.pbkdf2_hmac("sha256", key.encode(), FINGERPRINT_SALT, FINGERPRINT_ITERATIONS)
    text = digest.hex()[:16].upper()
    return ":".join(text[i : i + 4] for i in range(0, 16, 4))


def derive(key: str, purpose: str) -> bytes:
    """A key for one purpose derived from the pre-shared key (fast: not for signing)."""
    return _hkdf(key.encode(), f"appliance-failover/{purpose}".encode())


# scrypt's cost parameters for the peer signing key (RFC 7914): N = 2**15, r = 8, p = 1,
# so 128 x N x r = 32 MiB of memory per derivation and, measured by bench/kdf_cost.py
# (docs/BENCHMARKS.md), about 100 000 times the cost of the HKDF used before, for an
# attacker who holds a signed message and tries guesses at the pre-shared key offline.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 32


def new_salt() -> str:
    """A random per-pair salt, as hex (exchanged at Establish; not secret)."""
    return secrets.token_hex(SALT_BYTES)


def new_key_id() -> str:
    """A random per-pair key id: names the pair's key, says nothing about it."""
    return "pair-" + secrets.token_hex(8)


@functools.lru_cache(maxsize=4)
def stretch(key: str, salt: bytes, purpose: str) -> bytes:
    """A 32-byte key for `purpose` from the pre-shared key and a salt, through scrypt.

    Cached: every signed request needs it, and scrypt is slow on purpose. The
    cache holds at most four keys, in this process's memory only.
    """
    material = hashlib.scrypt(
        key.encode(),
        salt=salt + b"|" + purpose.encode(),
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=SCRYPT_MAXMEM,
        dklen=32,
    )
    return material
