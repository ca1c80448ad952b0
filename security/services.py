"""Setting the pre-shared key: the one path used by the Security page and the CLI."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from appliance.models import AuditEvent
from security import keys
from security.models import PreSharedKey


def validate_key(key: str) -> None:
    if len(key) < keys.MIN_LENGTH:
        raise ValidationError(
            f"The key is {len(key)} characters long; use at least {keys.MIN_LENGTH}. "
            "A long random passphrase is best.",
            code="too_short",
        )
    if len(key) > keys.MAX_LENGTH:
        raise ValidationError(
            f"The key is {len(key)} characters long; use at most {keys.MAX_LENGTH}.",
            code="too_long",
        )
    if key != key.strip():
        raise ValidationError(
            "The key starts or ends with white space, which is easy to lose when typing it on "
            "the other site. Remove it.",
            code="whitespace",
        )
    if not key.isprintable():
        raise ValidationError("The key contains control characters; use printable characters only.")


def set_key(key: str, actor: object) -> PreSharedKey:
    """Validate and store the key, and record the change (by fingerprint, never the key)."""
    validate_key(key)
    with transaction.atomic():
        previous = PreSharedKey.current()
        name = getattr(actor, "username", None) or str(actor or "system")
        stored = PreSharedKey.store(key, by=name)
        if previous is None:
            detail = f"Pre-shared key set (fingerprint {stored.fingerprint})."
        elif previous.fingerprint == stored.fingerprint:
            detail = f"Pre-shared key saved unchanged (fingerprint {stored.fingerprint})."
        else:
            detail = (
                f"Pre-shared key changed from fingerprint {previous.fingerprint} "
                f"to {stored.fingerprint}."
            )
        AuditEvent.record(actor, "security.key_changed", detail)
    return stored
