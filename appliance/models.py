"""The data a site serves and that failover protects: site settings, reports.

User accounts are Django's own users; "administrative rights" is the
superuser flag. Alongside sit the site's own bookkeeping: the audit trail and
the heartbeats of its worker and beat.
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import timedelta
from typing import Self

from django.conf import settings
from django.db import models
from django.utils import timezone

TIME_ZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class Singleton(models.Model):
    """A model with exactly one row (pk 1): settings of this site."""

    class Meta:
        abstract = True

    def save(self, *args: object, **kwargs: object) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> Self:
        """The row, or unsaved defaults when none was saved yet (reading never writes)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class SiteSettings(Singleton):
    """The support site's settings: one row, edited under Configuration, synced to the backup."""

    site_name = models.CharField(max_length=100, default="Support")
    public_hostname = models.CharField(
        max_length=253,
        blank=True,
        help_text="The name users type to reach the support site, e.g. support.example.com.",
    )
    support_contact = models.CharField(
        max_length=200, blank=True, help_text="Who users contact for help: an e-mail or phone."
    )
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="UTC")
    login_banner = models.TextField(
        blank=True, help_text="Shown above the login form, e.g. an acceptable-use notice."
    )
    report_retention_days = models.PositiveIntegerField(
        default=365, help_text="Reports older than this are deleted. 0 keeps them forever."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "site settings"

    def __str__(self) -> str:
        return self.site_name


class Report(models.Model):
    """One support session: who helped whom, on which computer, and how it ended."""

    class Outcome(models.TextChoices):
        RESOLVED = "resolved", "Resolved"
        UNRESOLVED = "unresolved", "Unresolved"
        ESCALATED = "escalated", "Escalated"
        ABANDONED = "abandoned", "Abandoned"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    representative = models.CharField(max_length=150, db_index=True)
    customer_name = models.CharField(max_length=150, db_index=True)
    computer_name = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, db_index=True)
    chat_transcript = models.TextField(blank=True)
    recording = models.FileField(upload_to="recordings/%Y/%m/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.customer_name} with {self.representative} at {self.started_at:%Y-%m-%d %H:%M}"
        )

    @property
    def duration(self) -> timedelta | None:
        if self.ended_at is None:
            return None
        return self.ended_at - self.started_at


class AuditEvent(models.Model):
    """Who did what, when, on which site. Never holds a secret."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(
        max_length=150, help_text="User name, or 'system' for the site itself."
    )
    site = models.CharField(max_length=100, default="")
    action = models.CharField(max_length=64, db_index=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"

    @classmethod
    def record(cls, actor: object, action: str, detail: str = "") -> AuditEvent:
        """Append one entry. `actor` is a user, a user name, or None for the site itself."""
        name = getattr(actor, "username", None) or (actor if isinstance(actor, str) else "system")
        return cls.objects.create(
            actor=name, site=settings.APPLIANCE_NAME, action=action, detail=detail
        )


class Heartbeat(models.Model):
    """The last sign of life of one of the site's background processes."""

    class Component(models.TextChoices):
        WORKER = "worker", "Worker"
        BEAT = "beat", "Beat"
        NETWORK = "network", "Network worker"

    component = models.CharField(max_length=16, choices=Component.choices, primary_key=True)
    last_seen = models.DateTimeField()
    hostname = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True)

    def __str__(self) -> str:
        return f"{self.component} at {self.last_seen:%H:%M:%S}"

    @classmethod
    def beat(cls, component: str, hostname: str, pid: int) -> None:
        cls.objects.update_or_create(
            component=component,
            defaults={"last_seen": timezone.now(), "hostname": hostname, "pid": pid},
        )

    def age(self) -> timedelta:
        return timezone.now() - self.last_seen

    def is_alive(self) -> bool:
        """Alive when seen within three heartbeat periods (one missed beat is not death)."""
        return self.age() <= timedelta(seconds=settings.HEARTBEAT_SECONDS * 3)
