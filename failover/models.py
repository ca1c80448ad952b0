"""This site's place in a failover pair: its role, the epoch, the peer, and the history."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone


class Role(models.TextChoices):
    NONE = "none", "None"
    PRIMARY = "primary", "Primary"
    BACKUP = "backup", "Backup"


ROLE_BADGES = {Role.NONE: "secondary", Role.PRIMARY: "success", Role.BACKUP: "info"}


class StaleState(Exception):
    """Another process changed the state first (the compare-and-set found a newer epoch)."""


class FailoverState(models.Model):
    """One row: this site's role, the epoch of the last role change, and how to reach the peer.

    Every role change increases the epoch. Changes go through the named
    transitions below, each a compare-and-set on the epoch it started from, so
    two workers (or a worker and a request) cannot both win.
    """

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.NONE)
    epoch = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    # The relationship: how this site reaches its peer, and what it pinned.
    peer_name = models.CharField(max_length=100, blank=True)
    peer_host = models.CharField(max_length=253, blank=True)
    peer_port = models.PositiveIntegerField(null=True, blank=True)
    peer_scheme = models.CharField(max_length=5, default="https")
    peer_fingerprint = models.CharField(
        max_length=95, blank=True, help_text="SHA-256 of the peer's TLS certificate, pinned."
    )
    # How the peer reaches this site (the primary's "reverse connection details").
    local_host = models.CharField(max_length=253, blank=True)
    local_port = models.PositiveIntegerField(null=True, blank=True)
    established_at = models.DateTimeField(null=True, blank=True)

    # The last check of the peer.
    peer_role = models.CharField(max_length=10, choices=Role.choices, blank=True)
    peer_epoch = models.PositiveBigIntegerField(null=True, blank=True)
    peer_reachable = models.BooleanField(null=True)
    peer_checked_at = models.DateTimeField(null=True, blank=True)
    peer_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.role} (epoch {self.epoch})"

    @classmethod
    def load(cls) -> FailoverState:
        """The row, or unsaved defaults when none was saved yet (reading never writes)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @property
    def badge(self) -> str:
        return ROLE_BADGES[Role(self.role)]

    @property
    def peer_badge(self) -> str:
        return ROLE_BADGES[Role(self.peer_role)] if self.peer_role else "secondary"

    @property
    def is_paired(self) -> bool:
        return self.role != Role.NONE

    @property
    def peer_address(self) -> str:
        return f"{self.peer_host}:{self.peer_port}" if self.peer_host else ""

    def _compare_and_set(self, **changes: object) -> None:
        """Apply `changes` only if the stored epoch is still the one this object read."""
        changes.setdefault("updated_at", timezone.now())
        with transaction.atomic():
            FailoverState.objects.get_or_create(pk=1)
            updated = FailoverState.objects.filter(pk=1, epoch=self.epoch).update(**changes)
        if not updated:
            raise StaleState("The failover state changed meanwhile; reload and try again.")
        for field, value in changes.items():
            setattr(self, field, value)

    def establish(
        self,
        role: Role,
        *,
        epoch: int,
        peer_name: str,
        peer_host: str,
        peer_port: int,
        peer_scheme: str,
        peer_fingerprint: str,
        local_host: str = "",
        local_port: int | None = None,
    ) -> None:
        """Enter a relationship in `role` at `epoch` (greater than any this site has seen)."""
        if epoch <= self.epoch:
            raise StaleState(f"Epoch {epoch} is not newer than this site's epoch {self.epoch}.")
        self._compare_and_set(
            role=role,
            epoch=epoch,
            peer_name=peer_name,
            peer_host=peer_host,
            peer_port=peer_port,
            peer_scheme=peer_scheme,
            peer_fingerprint=peer_fingerprint,
            local_host=local_host,
            local_port=local_port,
            established_at=timezone.now(),
            peer_role=Role.BACKUP if role == Role.PRIMARY else Role.PRIMARY,
            peer_epoch=epoch,
            peer_reachable=True,
            peer_checked_at=timezone.now(),
            peer_error="",
        )

    def leave(self) -> None:
        """Break the relationship: back to role none, forgetting the peer (the epoch stays)."""
        self._compare_and_set(
            role=Role.NONE,
            epoch=self.epoch + 1,
            peer_name="",
            peer_host="",
            peer_port=None,
            peer_fingerprint="",
            local_host="",
            local_port=None,
            established_at=None,
            peer_role="",
            peer_epoch=None,
            peer_reachable=None,
            peer_checked_at=None,
            peer_error="",
        )

    def record_peer_check(
        self, *, reachable: bool, role: str = "", epoch: int | None = None, error: str = ""
    ) -> bool:
        """Store the result of a check of the peer. True when reachability changed."""
        changed = self.peer_reachable is not None and self.peer_reachable != reachable
        fields = {
            "peer_reachable": reachable,
            "peer_checked_at": timezone.now(),
            "peer_error": error,
        }
        if reachable:
            fields.update(peer_role=role, peer_epoch=epoch)
        FailoverState.objects.filter(pk=1, epoch=self.epoch).update(**fields)
        for field, value in fields.items():
            setattr(self, field, value)
        return changed


class FailoverEvent(models.Model):
    """One line of the Status history: what happened to the pair, when, and why."""

    class Kind(models.TextChoices):
        ESTABLISHED = "established", "Relationship established"
        BROKEN = "broken", "Relationship broken"
        PEER_UNREACHABLE = "peer_unreachable", "Peer unreachable"
        PEER_REACHABLE = "peer_reachable", "Peer reachable again"
        AUTH_REFUSED = "auth_refused", "Request refused"
        ROLE_CHANGED = "role_changed", "Role changed"
        KEY_MISMATCH = "key_mismatch", "Key mismatch"
        ERROR = "error", "Error"

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        DANGER = "danger", "Problem"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    site = models.CharField(max_length=100, default="")
    actor = models.CharField(max_length=150, default="system")
    epoch = models.PositiveBigIntegerField(default=0)
    message = models.TextField()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}: {self.message}"

    @property
    def badge(self) -> str:
        return {"info": "secondary", "warning": "warning", "danger": "danger"}[self.severity]

    @classmethod
    def record(
        cls,
        kind: str,
        message: str,
        *,
        severity: str = Severity.INFO,
        actor: object = None,
        at: datetime | None = None,
    ) -> FailoverEvent:
        name = getattr(actor, "username", None) or (actor if isinstance(actor, str) else "system")
        return cls.objects.create(
            kind=kind,
            message=message,
            severity=severity,
            actor=name,
            site=settings.APPLIANCE_NAME,
            epoch=FailoverState.load().epoch,
            at=at or timezone.now(),
        )
