"""The stored pre-shared key: one row, encrypted, with its fingerprint."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from security import keys


class PreSharedKey(models.Model):
    """The inter-appliance pre-shared key. Never synced, never shown, never logged."""

    encrypted_key = models.TextField()
    fingerprint = models.CharField(max_length=19)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=150, blank=True)
    # The pair's salt for the signing key and its key id, both random, agreed at Establish
    # (or by `failover rekey`). Empty: no pair yet, messages use the bootstrap key.
    pair_salt = models.CharField(max_length=64, blank=True)
    pair_key_id = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return f"pre-shared key {self.fingerprint}"

    def __repr__(self) -> str:
        return f"<PreSharedKey fingerprint={self.fingerprint}>"

    @classmethod
    def current(cls) -> PreSharedKey | None:
        return cls.objects.filter(pk=1).first()

    @classmethod
    def store(cls, key: str, by: str) -> PreSharedKey:
        """Replace the key. The caller has validated it."""
        obj, _ = cls.objects.update_or_create(
            pk=1,
            defaults={
                "encrypted_key": keys.encrypt(key),
                "fingerprint": keys.fingerprint(key),
                "updated_at": timezone.now(),
                "updated_by": by,
            },
        )
        return obj

    @classmethod
    def set_pair(cls, salt: str, key_id: str) -> None:
        """Sign with the key of this pair's salt from now on (the key itself is unchanged)."""
        cls.objects.filter(pk=1).update(pair_salt=salt, pair_key_id=key_id)

    def reveal(self) -> str:
        """The key in clear, for deriving the signing key. Raises keys.KeyUnreadable."""
        return keys.decrypt(self.encrypted_key)
