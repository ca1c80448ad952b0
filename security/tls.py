"""This site's own TLS certificate, as the peer will pin it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings


def certificate_fingerprint(pem_path: str | Path) -> str:
    """SHA-256 of the certificate's DER bytes, as colon-separated upper-case hex."""
    certificate = x509.load_pem_x509_certificate(Path(pem_path).read_bytes())
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def own_fingerprint() -> str:
    """The fingerprint of the certificate this site serves, or "" when it serves plain HTTP."""
    return certificate_fingerprint(settings.TLS_CERTFILE) if settings.TLS_CERTFILE else ""
