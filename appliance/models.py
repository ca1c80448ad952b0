"""The data a site serves and that failover protects: site settings, reports, API accounts.

User accounts are Django's own users; "administrative rights" is the
superuser flag. Alongside sit the site's own bookkeeping: the audit trail and
the heartbeats of its worker and beat.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
import zoneinfo
from datetime import datetime, timedelta
from typing import Self

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
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


def new_client_id() -> str:
    return secrets.token_hex(20)


class ApiAccount(models.Model):
    """A script's account for the site's APIs, as BeyondTrust's API Configuration has them.

    It authenticates with OAuth 2.0 client credentials (its client ID and secret
    buy a bearer token at /oauth2/token). The secret is shown once when it is made
    and stored only as a hash. The account travels with the data sync, so a
    monitor keeps its credentials when the backup takes over.
    """

    class Access(models.TextChoices):
        READ_ONLY = "read_only", "Read-only: check_health"
        FULL = "full", "Full: also set_failover_role and the JSON API"

    name = models.CharField(max_length=100, unique=True)
    access = models.CharField(
        "Permission", max_length=10, choices=Access.choices, default=Access.READ_ONLY
    )
    enabled = models.BooleanField(
        default=True, help_text="A disabled account gets no tokens, and its tokens stop working."
    )
    client_id = models.CharField(
        "OAuth client ID", max_length=40, unique=True, default=new_client_id, editable=False
    )
    secret_hash = models.CharField(max_length=128, editable=False)
    # Tokens issued before this moment are refused (the secret was regenerated).
    secret_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API account"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def with_last_use(cls) -> models.QuerySet[ApiAccount]:
        """Every account, with when this site last saw it used (`last_used_at`)."""
        used = ApiAccountUse.objects.filter(client_id=models.OuterRef("client_id"))
        return cls.objects.annotate(used_at=models.Subquery(used.values("last_used_at")[:1]))

    def set_new_secret(self) -> str:
        """Make a new client secret: its hash is kept, the secret itself returned to show once.

        Tokens issued with the old secret stop working (on both sites, once synced).
        """
        secret = secrets.token_urlsafe(32)
        self.secret_hash = make_password(secret)
        self.secret_changed_at = timezone.now()
        return secret

    def check_secret(self, secret: str) -> bool:
        return bool(self.secret_hash) and check_password(secret, self.secret_hash)

    @property
    def has_full_access(self) -> bool:
        return self.access == self.Access.FULL

    @property
    def last_used_at(self) -> datetime | None:
        """When this site last saw the account used (ApiAccountUse), or None."""
        if hasattr(self, "used_at"):  # annotated by ApiAccount.with_last_use()
            return self.used_at
        use = ApiAccountUse.objects.filter(client_id=self.client_id).first()
        return use.last_used_at if use else None

    def record_use(self) -> None:
        """Note that the account was used now, on this site (at most once a minute)."""
        ApiAccountUse.record(self.client_id)


class ApiAccountUse(models.Model):
    """When this site last saw an API account used. Site-local: never synced.

    Kept apart from the synced account so that a monitor's polls write nothing the
    data sync carries, nor rows its apply holds locked: on PostgreSQL a backup's
    apply in progress never delays a check_health (SQLite has one lock for all writes).
    """

    client_id = models.CharField(max_length=40, primary_key=True)
    last_used_at = models.DateTimeField()

    # A use is recorded at most this often (a monitor asks every few seconds).
    RECORDED_EVERY = timedelta(minutes=1)

    def __str__(self) -> str:
        return f"{self.client_id} at {self.last_used_at:%Y-%m-%d %H:%M}"

    @classmethod
    def record(cls, client_id: str) -> None:
        now = timezone.now()
        recent = cls.objects.filter(client_id=client_id, last_used_at__gt=now - cls.RECORDED_EVERY)
        if recent.exists():
            return
        cls.objects.update_or_create(client_id=client_id, defaults={"last_used_at": now})


class ApiToken(models.Model):
    """An administrator's API token (`Authorization: Token <key>`), kept as its SHA-256.

    The key is 256 random bits, shown once when it is issued; a stolen database or
    backup file holds only digests, which open nothing. The digest travels with its
    user in the data sync, so an API client keeps working after a failover.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token"
    )
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"API token of {self.user}"

    @staticmethod
    def digest_of(key: str) -> str:
        """The SHA-256 of a key, as stored. A plain hash suffices: the key is random and
        long, so there is nothing to guess that a slow hash would protect."""
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user: object) -> str:
        """A new key for `user`, replacing any other; the key itself is kept nowhere."""
        key = secrets.token_urlsafe(32)
        cls.objects.filter(user=user).delete()
        cls.objects.create(user=user, digest=cls.digest_of(key))
        return key

    @classmethod
    def holder(cls, key: str) -> Self | None:
        """The token whose key this is, with its user; None for any other string."""
        return cls.objects.select_related("user").filter(digest=cls.digest_of(key)).first()


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
