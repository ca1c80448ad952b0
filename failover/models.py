"""This site's place in a failover pair."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    NONE = "none", "None"
    PRIMARY = "primary", "Primary"
    BACKUP = "backup", "Backup"


ROLE_BADGES = {Role.NONE: "secondary", Role.PRIMARY: "success", Role.BACKUP: "info"}


class FailoverState(models.Model):
    """One row: this site's role and the epoch of the last role change it knows of."""

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.NONE)
    epoch = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.role} (epoch {self.epoch})"

    @classmethod
    def load(cls) -> FailoverState:
        """The row, or unsaved defaults when none was saved yet (reading never writes)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @property
    def badge(self) -> str:
        return ROLE_BADGES[Role(self.role)]
