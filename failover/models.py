"""This site's place in a failover pair: its role, the epoch, the peer, and the history.

State only: the named transitions below change rows and nothing else. What follows
from a change (an alert for an event, the shared IP following a role) is hung on
signals and commit hooks by the behaviour modules (failover.apps wires them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import datetime

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from appliance.models import Singleton
from failover.sync import progress
from security import keys


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
    # The peer's software version, and why the two sites cannot work together ("" when they
    # can), as the last check heard them (failover.compat).
    peer_version = models.CharField(max_length=100, blank=True)
    peer_incompatible = models.TextField(blank=True)
    # The backup's last finished sync, as the peer check last heard it (on the primary).
    peer_last_sync_at = models.DateTimeField(null=True, blank=True)
    peer_last_sync_status = models.CharField(max_length=10, blank=True)

    # The backup's monitor: since when the primary has failed its polls.
    primary_failing_since = models.DateTimeField(null=True, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    # The monitor's last network test reached no test IP (the backup's network is down).
    backup_isolated = models.BooleanField(default=False)
    # Become Primary with a final sync: the primary takes no changes meanwhile.
    switching_over = models.BooleanField(default=False)
    # The epoch whose role change this site has followed up (DNS swing, takeover hooks).
    followed_epoch = models.PositiveBigIntegerField(default=0)

    # On the primary: how far the backup has applied this site's change log, as its
    # requests for changes said (the acknowledgement). Written at most once a second.
    peer_acked_generation = models.UUIDField(null=True, blank=True)
    peer_acked_seq = models.BigIntegerField(null=True, blank=True)
    peer_acked_at = models.DateTimeField(null=True, blank=True)
    # On the primary, synchronous mode: since when writes go on without the backup.
    synchronous_suspended_at = models.DateTimeField(null=True, blank=True)
    # Changes this site held that its successor lacked when it stopped being primary,
    # kept in an export; and the same, as the peer reported it about itself.
    unsent_changes = models.PositiveIntegerField(default=0)
    unsent_export = models.CharField(max_length=200, blank=True)
    unsent_at = models.DateTimeField(null=True, blank=True)
    peer_unsent_changes = models.PositiveIntegerField(default=0)
    peer_unsent_export = models.CharField(max_length=200, blank=True)
    peer_unsent_at = models.DateTimeField(null=True, blank=True)

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

    def promote(self, *, agreed: int = 0) -> None:
        """Become primary with an epoch above every one seen (own and peer's).

        `agreed`: the epoch the peer has just yielded under (Fix This Error). This
        site takes that very epoch, even when a peer check has seen the peer at it
        in between, unless it has seen a higher one.
        """
        seen = max(self.epoch, self.peer_epoch or 0)
        epoch = agreed if agreed > self.epoch and agreed >= seen else seen + 1
        self._compare_and_set(
            role=Role.PRIMARY,
            epoch=epoch,
            peer_role=Role.BACKUP,
            primary_failing_since=None,
            backup_isolated=False,
            switching_over=False,
        )

    def demote(self, *, epoch: int) -> None:
        """Become backup under the peer's newer epoch (never lower than our own)."""
        self._compare_and_set(
            role=Role.BACKUP,
            epoch=max(epoch, self.epoch),
            peer_role=Role.PRIMARY,
            peer_epoch=max(epoch, self.epoch),
            primary_failing_since=None,
            backup_isolated=False,
            switching_over=False,
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
            peer_version="",
            peer_incompatible="",
            primary_failing_since=None,
            backup_isolated=False,
            switching_over=False,
        )

    def claim_follow_up(self) -> bool:
        """Claim the follow-up of the role change that brought this epoch (compare-and-set).

        The follow-up (the DNS swing, the takeover hooks) runs once per role
        change: of two workers, or a worker and a retried task, one wins.
        """
        claimed = FailoverState.objects.filter(
            pk=1, epoch=self.epoch, followed_epoch__lt=self.epoch
        ).update(followed_epoch=self.epoch)
        if claimed:
            self.followed_epoch = self.epoch
        return bool(claimed)

    @property
    def follow_up_due(self) -> bool:
        return self.followed_epoch < self.epoch

    def record_peer_compatibility(self, version: str, incompatible: str) -> bool:
        """Store the peer's version and what stops the two working together ("": nothing).

        True when either changed.
        """
        changed = (version[:100], incompatible) != (self.peer_version, self.peer_incompatible)
        fields = {"peer_version": version[:100], "peer_incompatible": incompatible}
        FailoverState.objects.filter(pk=1, epoch=self.epoch).update(**fields)
        for field, value in fields.items():
            setattr(self, field, value)
        return changed

    def record_peer_check(
        self,
        *,
        reachable: bool,
        role: str = "",
        epoch: int | None = None,
        error: str = "",
        last_sync: dict | None = None,
        unsent: dict | None = None,
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
        if last_sync and last_sync.get("finished_at"):
            fields.update(
                peer_last_sync_at=datetime.fromisoformat(last_sync["finished_at"]),
                peer_last_sync_status=last_sync["status"],
            )
        if unsent and unsent.get("changes"):
            fields.update(
                peer_unsent_changes=int(unsent["changes"]),
                peer_unsent_export=str(unsent.get("export", ""))[:200],
                peer_unsent_at=datetime.fromisoformat(unsent["at"]) if unsent.get("at") else None,
            )
        FailoverState.objects.filter(pk=1, epoch=self.epoch).update(**fields)
        for field, value in fields.items():
            setattr(self, field, value)
        return changed


class SharedIP(Singleton):
    """This site's shared addresses (one IPv4, one IPv6) and their interface. Site-local.

    The role drives them: held while this site is primary and the box is
    checked, released otherwise. Either address may be left empty.
    """

    enabled = models.BooleanField(default=False, verbose_name="Shared IP")
    address = models.CharField(
        max_length=50, blank=True, help_text="IPv4, with its prefix, e.g. 192.0.2.10/24."
    )
    address6 = models.CharField(
        max_length=50, blank=True, help_text="IPv6, with its prefix, e.g. 2001:db8::10/64."
    )
    interface = models.CharField(max_length=15, blank=True, help_text="e.g. eth0")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        named = " and ".join(self.addresses)
        return f"{named} on {self.interface}" if named else "no shared IP"

    @property
    def addresses(self) -> list[str]:
        """The addresses entered, IPv4 first, each with its prefix."""
        return [address for address in (self.address, self.address6) if address]

    @property
    def is_configured(self) -> bool:
        return bool(self.enabled and self.addresses and self.interface)


class DNSSwing(Singleton):
    """The DNS swing: on becoming primary this site points a name at its own addresses.

    An RFC 2136 dynamic update signed with TSIG, sent to the zone's
    authoritative server. Site-local, like the shared IP: each site names its
    own addresses and keeps its own copy of the key; nothing here is synced.
    The TSIG secret is stored encrypted and never shown again.
    """

    class Algorithm(models.TextChoices):
        HMAC_SHA256 = "hmac-sha256", "HMAC-SHA256"
        HMAC_SHA384 = "hmac-sha384", "HMAC-SHA384"
        HMAC_SHA512 = "hmac-sha512", "HMAC-SHA512"
        HMAC_SHA224 = "hmac-sha224", "HMAC-SHA224"
        HMAC_SHA1 = "hmac-sha1", "HMAC-SHA1 (legacy)"
        HMAC_MD5 = "hmac-md5.sig-alg.reg.int", "HMAC-MD5 (legacy)"

    # Names the key derivation for the secret's encryption at rest (not a secret).
    SECRET_PURPOSE = "dns-tsig-at-rest/v1"  # noqa: S105

    enabled = models.BooleanField(default=False, verbose_name="DNS swing")
    server = models.CharField(
        max_length=253, blank=True, help_text="The zone's authoritative server that takes updates."
    )
    port = models.PositiveIntegerField(default=53)
    zone = models.CharField(max_length=253, blank=True, help_text="e.g. example.com")
    name = models.CharField(
        max_length=253, blank=True, help_text="The name clients use, e.g. support.example.com."
    )
    ttl = models.PositiveIntegerField(default=60, help_text="Seconds resolvers may cache it.")
    key_name = models.CharField(max_length=253, blank=True)
    algorithm = models.CharField(
        max_length=30, choices=Algorithm.choices, default=Algorithm.HMAC_SHA256
    )
    encrypted_secret = models.TextField(blank=True)
    ipv4 = models.GenericIPAddressField(
        protocol="IPv4", null=True, blank=True, help_text="Published as the name's A record."
    )
    ipv6 = models.GenericIPAddressField(
        protocol="IPv6", null=True, blank=True, help_text="Published as the name's AAAA record."
    )
    # What the last swing that worked published, under which epoch (see `fingerprint`);
    # "EPOCH saved" when the settings were saved since, to be published again.
    published = models.CharField(max_length=1200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"DNS swing of {self.name} at {self.server}" if self.name else "no DNS swing"

    def __repr__(self) -> str:
        return f"<DNSSwing {self.name!r} at {self.server!r}>"

    @property
    def is_configured(self) -> bool:
        return bool(
            self.enabled
            and self.server
            and self.zone
            and self.name
            and self.key_name
            and self.encrypted_secret
            and (self.ipv4 or self.ipv6)
        )

    @property
    def has_secret(self) -> bool:
        return bool(self.encrypted_secret)

    def fingerprint(self, epoch: int) -> str:
        """What a swing under `epoch` with these settings publishes, in one line: a swing
        is made again only when this changes (a new role change, new settings)."""
        parts = (self.server, self.port, self.zone, self.name, self.ttl, self.ipv4, self.ipv6)
        return f"{epoch} " + " ".join(str(part or "") for part in parts)

    def record_published(self, fingerprint: str) -> None:
        """The swing of `fingerprint` worked (an update: a concurrent save keeps its fields)."""
        DNSSwing.objects.filter(pk=1).update(published=fingerprint)
        self.published = fingerprint

    def store_secret(self, secret: str) -> None:
        """Keep the TSIG secret encrypted (the caller saves the row)."""
        self.encrypted_secret = keys.seal(secret, self.SECRET_PURPOSE)

    def reveal_secret(self) -> str:
        """The TSIG secret in clear, to sign a message. Raises keys.KeyUnreadable."""
        return keys.unseal(
            self.encrypted_secret,
            self.SECRET_PURPOSE,
            what="TSIG secret of the DNS swing",
            where="Management > Failover, DNS swing",
        )


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
        SYNC_SUCCEEDED = "sync_succeeded", "Full sync completed"
        SYNC_FAILED = "sync_failed", "Sync failed"
        PRIMARY_DOWN = "primary_down", "Primary not answering"
        ISOLATED = "isolated", "Backup isolated"
        NETWORK_BACK = "network_back", "Backup's network back"
        FAILOVER = "failover", "Automatic failover"
        SHARED_IP = "shared_ip", "Shared IP"
        DNS = "dns", "DNS swing"
        DNS_FAILED = "dns_failed", "DNS swing failed"
        HOOK = "hook", "Takeover hook"
        HOOK_FAILED = "hook_failed", "Takeover hook failed"
        CONFLICT = "conflict", "Role conflict"
        REPLICATION = "replication", "Replication"
        SYNCHRONOUS_SUSPENDED = "sync_suspended", "Synchronous replication suspended"
        SYNCHRONOUS_RESUMED = "sync_resumed", "Synchronous replication resumed"
        UNSENT_CHANGES = "unsent_changes", "Changes kept in an export"
        BACKUP = "backup", "Site backup"
        BACKUP_FAILED = "backup_failed", "Site backup failed"
        RESTORED = "restored", "Site restored"
        PEER_VERSION = "peer_version", "Peer's version"
        INCOMPATIBLE = "incompatible", "Peer incompatible"
        ERROR = "error", "Error"

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        DANGER = "danger", "Problem"

    # Kinds that alert the administrators (e-mail and webhook).
    ALERTED = frozenset(
        {
            "failover", "role_changed", "conflict", "sync_failed", "isolated", "auth_refused",
            "key_mismatch", "sync_suspended", "unsent_changes", "dns_failed", "hook_failed",
            "backup_failed",
            "incompatible",
        }
    )  # fmt: skip

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

    @property
    def is_alerted(self) -> bool:
        return self.kind in self.ALERTED


class ChangeLog(models.Model):
    """On the primary: one row per write to synced data, so syncs send only what changed.

    Writes through the ORM's save() and delete() and many-to-many changes are
    logged by signals (failover.sync.changelog); bulk writes announce themselves.
    A row is numbered (`seq`, the sync cursor) only once it is committed, in
    `changelog.sequence`: numbers follow the order in which changes become
    visible, so a reader that has seen number n has seen every number before it.
    The primary key only orders the rows of one numbering pass.
    """

    at = models.DateTimeField(default=timezone.now)
    model = models.CharField(max_length=40)
    key = models.BigIntegerField()
    deleted = models.BooleanField(default=False)
    seq = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["model", "key"]),
            models.Index(fields=["model", "seq"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {'delete' if self.deleted else 'upsert'} {self.model}:{self.key}"


class SyncSource(models.Model):
    """On the primary: the identity of its change log. A backup holding a cursor from
    another generation (another primary, a restored database) needs a full sync."""

    generation = models.UUIDField()
    horizon = models.BigIntegerField(
        default=0, help_text="Change-log rows up to this number were pruned."
    )
    last_seq = models.BigIntegerField(default=0, help_text="The last number given to a change.")

    def __str__(self) -> str:
        return str(self.generation)

    @classmethod
    def load(cls) -> SyncSource:
        obj, _ = cls.objects.get_or_create(pk=1, defaults={"generation": uuid.uuid4()})
        return obj


class SyncRun(models.Model):
    """On the backup: one data sync from the primary, from request to outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        ESTABLISHED = "established", "After Establish Relationship"
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Sync Now"
        CLI = "cli", "CLI"
        BECOME_PRIMARY = "become_primary", "Final sync before Become Primary"
        RESYNC = "resync", "Full resync for continuous replication"

    STATUS_BADGES = {
        "pending": "secondary",
        "running": "primary",
        "succeeded": "success",
        "failed": "danger",
    }

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    full_requested = models.BooleanField(default=False)
    full = models.BooleanField(default=False)
    requested_by = models.CharField(max_length=150, default="system")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    phase = models.CharField(max_length=40, blank=True)
    records = models.PositiveBigIntegerField(default=0)
    records_expected = models.PositiveBigIntegerField(null=True, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    files = models.PositiveIntegerField(default=0)
    bandwidth_limit = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Bits per second in force for this run; empty: unlimited."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="When a released run is due to be tried again."
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"sync #{self.pk} {self.status}"

    @property
    def badge(self) -> str:
        return self.STATUS_BADGES[self.status]

    PENDING_STALE_SECONDS = 600
    RETRY_GRACE_SECONDS = 30

    @classmethod
    def request(
        cls, trigger: str, *, full: bool = False, by: str = "system"
    ) -> tuple[SyncRun, bool]:
        """A new pending run, or the one already pending or running (one sync at a time).

        Returns (run, created). A running sync whose worker died is closed as
        failed first, so a killed worker cannot block syncs forever.
        """
        with transaction.atomic():
            active = cls.objects.filter(status__in=[cls.Status.PENDING, cls.Status.RUNNING])
            for run in active.order_by("id"):
                if not run.is_stale() or not run.close_as_dead():
                    return run, False
            run = cls.objects.create(trigger=trigger, full_requested=full, requested_by=by)
        return run, True

    def is_stale(self) -> bool:
        """Running, but its worker's pulse lapsed (it died); or never picked up."""
        if self.status == self.Status.PENDING:
            # Queued but never picked up: the broker lost the message, or the worker
            # holding a retry's countdown died before it was due.
            if self.retry_at is not None:
                overdue = (timezone.now() - self.retry_at).total_seconds()
                return overdue > self.RETRY_GRACE_SECONDS
            waited = (timezone.now() - self.created_at).total_seconds()
            return waited > self.PENDING_STALE_SECONDS
        if self.status != self.Status.RUNNING:
            return False
        # Its pulse starts before it is claimed and lasts while its worker lives. When
        # Redis cannot tell, the run is presumed alive: never two syncs at once.
        return progress.is_alive(self.pk) is False

    def close_as_dead(self) -> bool:
        """Close the run as failed, its worker dead, only if it is still as it was when
        judged so (compare-and-set): a slow worker that claimed it meanwhile keeps it."""
        now = timezone.now()
        error = "The worker stopped during this sync; the backup's data was left as it was."
        closed = SyncRun.objects.filter(
            pk=self.pk,
            status=self.status,
            status__in=[self.Status.PENDING, self.Status.RUNNING],
            attempts=self.attempts,
            retry_at=self.retry_at,
        ).update(status=self.Status.FAILED, error=error, finished_at=now)
        if closed:
            self.status, self.error, self.finished_at = self.Status.FAILED, error, now
        else:
            self.refresh_from_db()
        return bool(closed)

    def claim(self) -> bool:
        """Pending to running, only if still pending (two deliveries cannot both run it)."""
        now = timezone.now()
        claimed = SyncRun.objects.filter(pk=self.pk, status=self.Status.PENDING).update(
            status=self.Status.RUNNING, started_at=now, attempts=models.F("attempts") + 1
        )
        if claimed:
            self.refresh_from_db()
        return bool(claimed)

    def retry_now(self) -> bool:
        """A run waiting to retry is due at once (Sync Now while it waits). True if it waited.

        The countdown its worker holds still fires later; by then the run is claimed
        or closed, and that delivery does nothing.
        """
        now = timezone.now()
        moved = SyncRun.objects.filter(
            pk=self.pk, status=self.Status.PENDING, retry_at__gt=now
        ).update(retry_at=now)
        if moved:
            self.retry_at = now
        return bool(moved)

    def release(self, error: str, *, retry_in: float) -> None:
        """Running back to pending, to be retried in `retry_in` seconds; the error is kept."""
        retry_at = timezone.now() + dt.timedelta(seconds=retry_in)
        SyncRun.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            status=self.Status.PENDING, error=error, retry_at=retry_at
        )
        self.status, self.error, self.retry_at = self.Status.PENDING, error, retry_at

    def finish(self, status: str, error: str = "", **totals: object) -> bool:
        """Close the run with its outcome and totals; a run already closed stays as it was."""
        fields = {"status": status, "error": error, "finished_at": timezone.now(), **totals}
        closed = SyncRun.objects.filter(
            pk=self.pk, status__in=[self.Status.PENDING, self.Status.RUNNING]
        ).update(**fields)
        if closed:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(closed)

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def duration(self) -> dt.timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def as_dict(self) -> dict[str, object]:
        """The run as the CLI, the status API and the peer see it."""
        return {
            "id": self.pk,
            "status": self.status,
            "trigger": self.trigger,
            "full": self.full,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "records": self.records,
            "bytes": self.bytes,
            "files": self.files,
            "attempts": self.attempts,
            "error": self.error,
        }

    @classmethod
    def latest(cls) -> SyncRun | None:
        return cls.objects.order_by("-id").first()

    @property
    def rate(self) -> float | None:
        """Average bytes per second on the wire so far."""
        duration = self.duration
        if duration is None or duration.total_seconds() <= 0:
            return None
        return self.bytes / duration.total_seconds()


class SyncCursor(models.Model):
    """On the backup: how far it has applied the primary's change log, and how far behind.

    The cursor moves only in the transaction that applies a change set. Continuous
    replication also records what the primary said of its own log at the last
    contact, so the lag reads from here: `primary_latest` (its last change) and
    `pending_since` (when the first change this site has not applied was made).
    """

    generation = models.UUIDField(null=True, blank=True)
    seq = models.BigIntegerField(default=0)
    last_full_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    primary_latest = models.BigIntegerField(default=0)
    pending_since = models.DateTimeField(null=True, blank=True)
    contact_at = models.DateTimeField(null=True, blank=True)
    replication_error = models.TextField(blank=True)
    # The sync format of the change sets applied so far. A primary writing a newer one
    # sends everything once (failover.compat.needs_full): the older format left things out.
    sync_format = models.PositiveSmallIntegerField(default=2)

    def __str__(self) -> str:
        return f"{self.generation}:{self.seq}"

    @classmethod
    def load(cls) -> SyncCursor:
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class PendingRecording(models.Model):
    """On the backup: a recording whose report arrived by continuous replication before
    its file did. The file follows; until then the report says it is pending."""

    name = models.CharField(max_length=255, unique=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pending recording {self.name}"


def _bandwidth_label(bits: int) -> str:
    return f"{bits // 1_000_000} Mbit/s" if bits >= 1_000_000 else f"{bits // 1000} Kbit/s"


BANDWIDTH_STEPS = [
    256_000, 512_000, 1_000_000, 2_000_000, 5_000_000,
    10_000_000, 20_000_000, 50_000_000, 100_000_000,
]  # fmt: skip
BANDWIDTH_CHOICES = [(bits, _bandwidth_label(bits)) for bits in BANDWIDTH_STEPS]


class BackupSettings(Singleton):
    """The backup's schedule and limits. Edited on either site; not synced as data.

    The backup is the one that acts on them; the primary hands edits to it.
    """

    class Interval(models.TextChoices):
        CONTINUOUS = "continuous", "Continuously"
        EVERY_15_MINUTES = "15min", "Every 15 minutes"
        EVERY_HOUR = "hourly", "Every hour"
        EVERY_N_HOURS = "hours", "Every N hours"
        DAILY = "daily", "Every Day"
        WEEKLY = "weekly", "Once a Week"

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    enable_backup_operations = models.BooleanField(
        default=True,
        help_text="Allows automatic data syncs and automatic failover.",
    )
    sync_interval = models.CharField(
        max_length=10, choices=Interval.choices, default=Interval.CONTINUOUS
    )
    sync_every_hours = models.PositiveSmallIntegerField(default=4)
    sync_time = models.TimeField(default=dt.time(2, 0))
    sync_weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, default=Weekday.SUNDAY)
    bandwidth_limit = models.PositiveBigIntegerField(
        null=True, blank=True, choices=BANDWIDTH_CHOICES, help_text="Empty means unlimited."
    )
    automatic_failover = models.BooleanField(
        default=False, help_text="The backup polls the primary and takes over when it is down."
    )
    poll_interval_seconds = models.PositiveIntegerField(default=10)
    primary_timeout_seconds = models.PositiveIntegerField(
        default=300, help_text="How long polls may fail before the backup tests its network."
    )
    connectivity_test_ips = models.TextField(
        blank=True, help_text="One per line: an IP address (ICMP) or address:port (TCP)."
    )
    synchronous_replication = models.BooleanField(
        default=False,
        help_text="A write on the primary is acknowledged only once the backup has committed it.",
    )
    synchronous_timeout_seconds = models.PositiveSmallIntegerField(
        default=2,
        help_text="How long a write waits for the backup before the primary goes on alone.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"backup settings ({self.get_sync_interval_display()})"

    @property
    def is_continuous(self) -> bool:
        return self.sync_interval == self.Interval.CONTINUOUS

    @property
    def replicates_synchronously(self) -> bool:
        return self.is_continuous and self.synchronous_replication

    def poll_timeout(self) -> float:
        """A poll that takes longer than the poll interval has failed (at least 1 s).

        The peer timeout still caps it, so default settings (10 s polls) keep the
        peer timeout's patience with a slow link, and tight settings notice a dead
        primary within one interval.
        """
        return float(max(1, min(settings.PEER_TIMEOUT_SECONDS, self.poll_interval_seconds)))


class AlertSettings(Singleton):
    """Who hears about failovers, role changes, conflicts, sync failures and isolation."""

    email_recipients = models.TextField(blank=True, help_text="One e-mail address per line.")
    webhook_url = models.URLField(blank=True, help_text="Receives a JSON POST for each alert.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "alert settings"

    @property
    def recipients(self) -> list[str]:
        return self.email_recipients.split()


class AlertDelivery(models.Model):
    """The alert of one event, on its way: retried with backoff until every channel took it,
    or recorded as undeliverable when the retry period (ALERT_RETRY_SECONDS) is over."""

    class Status(models.TextChoices):
        PENDING = "pending", "Retrying"
        DELIVERED = "delivered", "Delivered"
        UNDELIVERABLE = "undeliverable", "Undeliverable"

    STATUS_BADGES = {"pending": "warning", "delivered": "success", "undeliverable": "danger"}

    event = models.OneToOneField(FailoverEvent, on_delete=models.CASCADE, related_name="alert")
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.PENDING)
    channels = models.CharField(
        max_length=40, help_text="The channels still to deliver to: email, webhook."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"alert for event #{self.event_id}: {self.status}"

    @property
    def badge(self) -> str:
        return self.STATUS_BADGES[self.status]

    @property
    def pending_channels(self) -> list[str]:
        return self.channels.split()

    def attempted(self, delivered: list[str], error: str) -> None:
        """One attempt: the channels that took the alert are done; the rest wait for a retry."""
        left = [channel for channel in self.pending_channels if channel not in delivered]
        fields: dict[str, object] = {
            "channels": " ".join(left),
            "attempts": models.F("attempts") + 1,
            "last_attempt_at": timezone.now(),
            "error": error,
        }
        if not left:
            fields.update(status=self.Status.DELIVERED, finished_at=timezone.now())
        AlertDelivery.objects.filter(pk=self.pk, status=self.Status.PENDING).update(**fields)
        self.refresh_from_db()

    def give_up(self, error: str) -> None:
        """No more retries: the alert is recorded as undeliverable, with the last error."""
        AlertDelivery.objects.filter(pk=self.pk, status=self.Status.PENDING).update(
            status=self.Status.UNDELIVERABLE, finished_at=timezone.now(), error=error
        )
        self.refresh_from_db()


class ScheduledBackup(Singleton):
    """The site's own daily backup to a folder, and how its last run went. Not synced:
    each site of a pair backs itself up where its administrator chose."""

    enabled = models.BooleanField(default=False)
    folder = models.CharField(
        max_length=500,
        blank=True,
        help_text="An existing folder on this site's machine that the worker can write to.",
    )
    keep = models.PositiveSmallIntegerField(
        default=7, help_text="How many backup files to keep; older ones are deleted."
    )
    at = models.TimeField(default=dt.time(3, 0), help_text="The time of day, in the site's zone.")
    updated_at = models.DateTimeField(auto_now=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_succeeded = models.BooleanField(null=True)
    last_file = models.CharField(max_length=500, blank=True)
    last_size = models.PositiveBigIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return "scheduled backup" + (f" to {self.folder}" if self.enabled else " (off)")

    @property
    def badge(self) -> str:
        return {True: "success", False: "danger", None: "secondary"}[self.last_succeeded]

    def started(self) -> None:
        """A scheduled backup began."""
        ScheduledBackup.objects.filter(pk=1).update(last_started_at=timezone.now())

    def finished(self, *, file: str = "", size: int | None = None, error: str = "") -> None:
        """A scheduled backup ended: with its file and size, or with the error that stopped it."""
        ScheduledBackup.objects.filter(pk=1).update(
            last_finished_at=timezone.now(),
            last_succeeded=not error,
            last_file=file,
            last_size=size,
            last_error=error,
        )
        self.refresh_from_db()
