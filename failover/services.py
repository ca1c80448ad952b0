"""The relationship between two sites: establish, break, check the peer.

Each function is one named operation. The primary side talks to the peer only
through failover.peer; the backup side's handlers (accept_*) are called by the
peer API views with already-authenticated payloads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from appliance.models import AuditEvent, SiteSettings
from appliance.version import SOFTWARE_VERSION
from failover import roles
from failover.models import (
    BackupSettings,
    FailoverEvent,
    FailoverState,
    Role,
    SharedIP,
    SyncRun,
)
from failover.peer import PeerClient, PeerError
from failover.sync import runs
from security import tls
from security.models import PreSharedKey

logger = logging.getLogger(__name__)

HELLO = "/api/peer/v1/hello"
ESTABLISH = "/api/peer/v1/establish"
BREAK = "/api/peer/v1/break"
SYNC_REQUEST = "/api/peer/v1/sync/request"
BACKUP_SETTINGS = "/api/peer/v1/backup-settings"
BACKUP_SETTINGS_FIELDS = (
    "enable_backup_operations",
    "sync_interval",
    "sync_every_hours",
    "sync_time",
    "sync_weekday",
    "bandwidth_limit",
    "automatic_failover",
    "poll_interval_seconds",
    "primary_timeout_seconds",
    "connectivity_test_ips",
)


class RelationshipError(Exception):
    """An operation on the relationship was refused. `reason` is machine-readable."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class PeerAddress:
    host: str
    port: int
    fingerprint: str = ""

    @property
    def display(self) -> str:
        return f"{self.host}:{self.port}"


def peer_scheme() -> str:
    """https, unless this site itself serves plain HTTP under the development setting."""
    return "http" if settings.PEER_ALLOW_PLAIN_HTTP and not settings.TLS_CERTFILE else "https"


def client_for(
    address: PeerAddress, scheme: str | None = None, *, timeout: float | None = None
) -> PeerClient:
    return PeerClient(
        address.host,
        address.port,
        scheme=scheme or peer_scheme(),
        ca_bundle=settings.PEER_CA_BUNDLE or None,
        pinned_fingerprint=address.fingerprint or None,
        timeout=timeout or settings.PEER_TIMEOUT_SECONDS,
    )


def client_for_state(state: FailoverState, *, timeout: float | None = None) -> PeerClient:
    address = PeerAddress(state.peer_host, state.peer_port or 0, state.peer_fingerprint)
    return client_for(address, state.peer_scheme, timeout=timeout)


def identity() -> dict[str, object]:
    """What this site says about itself in answer to `hello` (nothing secret)."""
    state = FailoverState.load()
    return {
        "name": settings.APPLIANCE_NAME,
        "version": SOFTWARE_VERSION,
        "role": state.role,
        "epoch": state.epoch,
        "peer_name": state.peer_name,
        "peer_address": state.peer_address,
        "last_sync": last.as_dict() if (last := SyncRun.latest()) else None,
        "holds_shared_ip": roles.holds_shared_ip(),
        "shared_ip": SharedIP.load().address,
    }


def probe_certificate(address: PeerAddress) -> str:
    """The fingerprint the peer presents now, to show before pinning it. Raises PeerError."""
    from failover.peer import fetch_certificate_fingerprint

    return fetch_certificate_fingerprint(
        address.host, address.port, timeout=settings.PEER_TIMEOUT_SECONDS
    )


def establish(backup: PeerAddress, reverse: PeerAddress, actor: object) -> FailoverState:
    """Make this site the primary and `backup` its backup.

    The site that holds the data establishes the relationship (the seed), so it
    becomes the primary. The backup calls back over `reverse` before it
    accepts, which proves that both directions work with the same key.
    """
    state = FailoverState.load()
    if state.is_paired:
        raise RelationshipError(
            f"This site is already {state.role} with {state.peer_name} at "
            f"{state.peer_address}. Break that relationship first.",
            reason="already_paired",
        )
    if PreSharedKey.current() is None:
        raise RelationshipError(
            "This site has no pre-shared key. Save one under Management > Security, and the "
            "same one on the backup.",
            reason="no_key",
        )
    try:
        with client_for(backup) as client:
            hello = client.get(HELLO)
            _check_hello(hello, backup)
            epoch = max(state.epoch, int(hello["epoch"])) + 1
            client.post(
                ESTABLISH,
                {
                    "primary_name": settings.APPLIANCE_NAME,
                    "primary_host": reverse.host,
                    "primary_port": reverse.port,
                    "primary_scheme": peer_scheme(),
                    "primary_fingerprint": tls.own_fingerprint(),
                    "backup_host": backup.host,
                    "backup_port": backup.port,
                    "epoch": epoch,
                    "version": SOFTWARE_VERSION,
                },
            )
    except PeerError as error:
        FailoverEvent.record(
            FailoverEvent.Kind.KEY_MISMATCH
            if error.reason == "key_mismatch"
            else FailoverEvent.Kind.ERROR,
            f"Establish Relationship with {backup.display} failed: {error.message}",
            severity=FailoverEvent.Severity.DANGER,
            actor=actor,
        )
        raise _as_relationship_error(error) from None
    with transaction.atomic():
        state.establish(
            Role.PRIMARY,
            epoch=epoch,
            peer_name=str(hello["name"]),
            peer_host=backup.host,
            peer_port=backup.port,
            peer_scheme=peer_scheme(),
            peer_fingerprint=backup.fingerprint,
            local_host=reverse.host,
            local_port=reverse.port,
        )
        _record_established(state, actor)
    return state


def _as_relationship_error(error: PeerError) -> RelationshipError:
    """A refusal the peer explained (409 with a reason) keeps the peer's reason and words."""
    payload = error.payload if isinstance(error.payload, dict) else {}
    if error.status == 409 and payload.get("reason") and payload.get("detail"):
        return RelationshipError(
            f"The backup refused: {payload['detail']}", reason=str(payload["reason"])
        )
    return RelationshipError(error.message, reason=error.reason)


def _check_hello(hello: dict, backup: PeerAddress) -> None:
    if hello.get("name") == settings.APPLIANCE_NAME:
        raise RelationshipError(
            f"The site at {backup.display} is named {hello.get('name')}, like this one. Give "
            "each site its own APPLIANCE_NAME (or it is this very site).",
            reason="same_name",
        )
    if hello.get("version") != SOFTWARE_VERSION:
        raise RelationshipError(
            f"The site at {backup.display} runs version {hello.get('version')}, this site "
            f"runs {SOFTWARE_VERSION}. Upgrade them to the same version first.",
            reason="version_mismatch",
        )
    if hello.get("role") != Role.NONE:
        raise RelationshipError(
            f"The site at {backup.display} ({hello.get('name')}) is already "
            f"{hello.get('role')} with {hello.get('peer_name') or 'another site'}"
            f"{' at ' + hello['peer_address'] if hello.get('peer_address') else ''}. "
            "Break that relationship on it first.",
            reason="already_paired",
        )


def _record_established(state: FailoverState, actor: object) -> None:
    message = (
        f"Relationship established: {settings.APPLIANCE_NAME} is {state.role}, "
        f"{state.peer_name} at {state.peer_address} is {state.peer_role} (epoch {state.epoch})."
    )
    FailoverEvent.record(FailoverEvent.Kind.ESTABLISHED, message, actor=actor)
    AuditEvent.record(actor, "failover.established", message)


def accept_establish(payload: dict) -> FailoverState:
    """On the backup: accept the primary's request, after calling it back."""
    state = FailoverState.load()
    primary = PeerAddress(
        str(payload["primary_host"]),
        int(payload["primary_port"]),
        str(payload.get("primary_fingerprint") or ""),
    )
    if state.is_paired:
        raise RelationshipError(
            f"This site is already {state.role} with {state.peer_name} at {state.peer_address}.",
            reason="already_paired",
        )
    if payload.get("version") != SOFTWARE_VERSION:
        raise RelationshipError(
            f"This site runs version {SOFTWARE_VERSION}, the primary {payload.get('version')}.",
            reason="version_mismatch",
        )
    epoch = int(payload["epoch"])
    if epoch <= state.epoch:
        raise RelationshipError(
            f"Epoch {epoch} is not newer than this site's epoch {state.epoch}.",
            reason="stale_epoch",
        )
    scheme = str(payload.get("primary_scheme") or "https")
    try:
        with client_for(primary, scheme) as client:
            client.get(HELLO)
    except PeerError as error:
        raise RelationshipError(
            f"The backup could not reach the primary back at {primary.display} (the reverse "
            f"connection details): {error.message}",
            reason="reverse_unreachable",
        ) from None
    with transaction.atomic():
        state.establish(
            Role.BACKUP,
            epoch=epoch,
            peer_name=str(payload["primary_name"]),
            peer_host=primary.host,
            peer_port=primary.port,
            peer_scheme=scheme,
            peer_fingerprint=primary.fingerprint,
            local_host=str(payload.get("backup_host") or ""),
            local_port=payload.get("backup_port"),
        )
        _record_established(state, f"peer {state.peer_name}")
        # The seed: the backup pulls the primary's data right away.
        runs.request_sync(SyncRun.Trigger.ESTABLISHED, full=True, by=f"peer {state.peer_name}")
    return state


def break_relationship(actor: object, *, force: bool = False) -> str:
    """Return both sites to role none. With `force`, this site leaves even if the peer is gone.

    Returns a sentence for the administrator saying what happened on each side.
    """
    state = FailoverState.load()
    if not state.is_paired:
        raise RelationshipError("This site is not paired.", reason="not_paired")
    peer = f"{state.peer_name} at {state.peer_address}"
    try:
        with client_for_state(state) as client:
            client.post(BREAK, {"epoch": state.epoch, "from": settings.APPLIANCE_NAME})
        peer_outcome = f"{peer} has left the relationship too."
    except PeerError as error:
        if not force:
            raise RelationshipError(
                f"Could not tell {peer} to break the relationship: {error.message} "
                "Nothing was changed. Use Force to break it on this site alone.",
                reason=error.reason,
            ) from None
        peer_outcome = (
            f"{peer} could not be told ({error.message}); break the relationship there too "
            "when it is back."
        )
    _leave(state, actor, f"Relationship broken on {settings.APPLIANCE_NAME}. {peer_outcome}")
    return peer_outcome


def accept_break(payload: dict) -> None:
    """On the peer's request: leave the relationship."""
    state = FailoverState.load()
    if not state.is_paired:
        return
    _leave(state, f"peer {state.peer_name}", f"Relationship broken by {state.peer_name}.")


def _leave(state: FailoverState, actor: object, message: str) -> None:
    with transaction.atomic():
        state.leave()
        FailoverEvent.record(FailoverEvent.Kind.BROKEN, message, actor=actor)
        AuditEvent.record(actor, "failover.broken", message)


def check_peer() -> None:
    """Ask the peer how it is and record the answer; record transitions as events."""
    state = FailoverState.load()
    if not state.is_paired:
        return
    try:
        with client_for_state(state) as client:
            hello = client.get(HELLO)
    except PeerError as error:
        if state.record_peer_check(reachable=False, error=error.message):
            kind, severity = FailoverEvent.Kind.PEER_UNREACHABLE, FailoverEvent.Severity.WARNING
            if error.reason == "key_mismatch":
                kind, severity = FailoverEvent.Kind.KEY_MISMATCH, FailoverEvent.Severity.DANGER
            FailoverEvent.record(
                kind,
                f"{state.peer_name} at {state.peer_address} cannot be checked: {error.message}",
                severity=severity,
            )
        return
    if state.record_peer_check(
        reachable=True, role=hello["role"], epoch=hello["epoch"], last_sync=hello.get("last_sync")
    ):
        FailoverEvent.record(
            FailoverEvent.Kind.PEER_REACHABLE,
            f"{state.peer_name} at {state.peer_address} is reachable again.",
        )
    settle_roles(state, hello)


def settle_roles(state: FailoverState, hello: dict) -> None:
    """What a site does on learning its peer's role and epoch (split-brain safety).

    A primary that meets a primary with a higher epoch steps down and releases
    the shared IP: the old primary coming back becomes backup, with no
    automatic failback. Equal claims are a conflict for the administrator.
    """
    peer_role, peer_epoch = hello.get("role"), int(hello.get("epoch") or 0)
    if state.role == Role.PRIMARY and peer_role == Role.PRIMARY and peer_epoch > state.epoch:
        roles.demote(
            peer_epoch,
            f"{state.peer_name} is primary with a newer epoch ({peer_epoch} > {state.epoch}).",
            "system",
        )
    elif (
        state.role == peer_role
        and state.role in (Role.PRIMARY, Role.BACKUP)
        and not conflict_reported()
    ):
        FailoverEvent.record(
            FailoverEvent.Kind.CONFLICT,
            f"Both sites claim the {state.role} role (epochs {state.epoch} and {peer_epoch}). "
            "Use Fix This Error on the Failover page.",
            severity=FailoverEvent.Severity.DANGER,
        )


def conflict_reported() -> bool:
    """Whether a role conflict was recorded and still stands.

    It stands while the last role event is the conflict and the peer, when last
    seen, claimed this site's role. Fix This Error may change only the other
    site's role (this one recording no event): once the peer is seen in the
    other role, the banner goes.
    """
    state = FailoverState.load()
    if state.peer_role != state.role:
        return False
    last = FailoverEvent.objects.filter(
        kind__in=[FailoverEvent.Kind.CONFLICT, FailoverEvent.Kind.ROLE_CHANGED]
    ).first()
    return last is not None and last.kind == FailoverEvent.Kind.CONFLICT


def sync_now(actor: object, *, full: bool = False, trigger: str = SyncRun.Trigger.MANUAL) -> str:
    """Start a sync from either site; returns a sentence saying which sync runs.

    On the backup the sync is queued here; on the primary the backup is asked
    to pull, since it is the backup that holds the cursor and applies the data.
    """
    state = FailoverState.load()
    by = getattr(actor, "username", None) or str(actor or "system")
    if state.role == Role.BACKUP:
        run, created = runs.request_sync(trigger, full=full, by=by)
        return describe_request(run, created)
    if state.role != Role.PRIMARY:
        raise RelationshipError(
            "This site is not paired: there is nothing to sync.", reason="not_paired"
        )
    try:
        with client_for_state(state) as client:
            answer = client.post(SYNC_REQUEST, {"full": full, "by": by, "trigger": trigger})
    except PeerError as error:
        raise RelationshipError(
            f"Could not ask the backup {state.peer_name} to sync: {error.message}",
            reason=error.reason,
        ) from None
    return f"The backup {state.peer_name}: {answer['detail']}"


def describe_request(run: SyncRun, created: bool) -> str:
    kind = "Full sync" if run.full_requested else "Sync"
    if created:
        return f"{kind} #{run.pk} started."
    since = run.created_at.astimezone(ZoneInfo(SiteSettings.load().time_zone))
    return f"Sync #{run.pk} is already {run.status} (since {since:%H:%M:%S}); wait for it."


def accept_sync_request(payload: dict) -> str:
    """On the backup, at the primary's request: start a sync."""
    state = FailoverState.load()
    if state.role != Role.BACKUP:
        raise RelationshipError(f"This site is {state.role}, not a backup.", reason="not_backup")
    trigger = payload.get("trigger") or SyncRun.Trigger.MANUAL
    run, created = runs.request_sync(
        trigger,
        full=bool(payload.get("full")),
        by=f"{payload.get('by', 'peer')} on {state.peer_name}",
    )
    return describe_request(run, created)


def scheduled_sync() -> None:
    """The schedule's tick: sync if this site is a backup with backup operations enabled."""
    state = FailoverState.load()
    if state.role == Role.BACKUP and BackupSettings.load().enable_backup_operations:
        runs.request_sync(SyncRun.Trigger.SCHEDULE)


def save_backup_settings(settings_: BackupSettings, actor: object) -> str:
    """Save the backup settings here, apply the schedule, and hand them to the peer.

    Both sites keep the same settings so either page shows what is in force;
    the backup is the one that acts on them. Returns a sentence about the peer.
    """
    from failover import schedule

    with transaction.atomic():
        settings_.save()
        schedule.apply(settings_)
        AuditEvent.record(
            actor,
            "failover.backup_settings",
            f"Backup settings: sync {schedule.describe(settings_)}.",
        )
    state = FailoverState.load()
    if not state.is_paired:
        return ""
    payload = {name: getattr(settings_, name) for name in BACKUP_SETTINGS_FIELDS}
    try:
        with client_for_state(state) as client:
            client.post(BACKUP_SETTINGS, payload)
    except PeerError as error:
        return (
            f"They could not be handed to {state.peer_name}: {error.message} Save them again later."
        )
    return f"{state.peer_name} has them too."


def accept_backup_settings(values: dict) -> None:
    """The peer saved new backup settings: keep the same here and follow the schedule."""
    from failover import schedule

    settings_ = BackupSettings.load()
    for name in BACKUP_SETTINGS_FIELDS:
        setattr(settings_, name, values[name])
    with transaction.atomic():
        settings_.save()
        schedule.apply(settings_)
        AuditEvent.record(
            f"peer {FailoverState.load().peer_name}",
            "failover.backup_settings",
            f"Backup settings from the peer: sync {schedule.describe(settings_)}.",
        )


def save_shared_ip(config: SharedIP, actor: object) -> str:
    """Save this site's shared IP, after checking the peer names the same address.

    An address is shared by one primary and one backup only: two sites naming
    different addresses would each think they manage "the" shared IP.
    """
    state = FailoverState.load()
    peer_note = ""
    if state.is_paired and config.address:
        try:
            with client_for_state(state) as client:
                peer_address = client.get(HELLO).get("shared_ip") or ""
        except PeerError as error:
            peer_note = (
                f" The other site could not be asked which address it shares ({error.message})."
            )
        else:
            if peer_address and peer_address != config.address:
                raise RelationshipError(
                    f"{state.peer_name} shares {peer_address}, not {config.address}. An address is "
                    "shared by one primary and one backup only: enter the same address on both "
                    "sites.",
                    reason="shared_ip_mismatch",
                )
    with transaction.atomic():
        config.save()
        AuditEvent.record(
            actor,
            "failover.shared_ip",
            f"Shared IP {'enabled' if config.enabled else 'disabled'}: "
            f"{config.address or 'no address'} on {config.interface or 'no interface'}.",
        )
        from failover import tasks

        transaction.on_commit(lambda: tasks.reconcile_shared_ip.delay())
    return peer_note
