"""Settings that both sites of a pair keep alike, and hand to each other.

The backup settings (schedule, bandwidth, automatic failover) are edited on
either site; both keep them so either page shows what is in force, and the
backup acts on them. The shared IP is site-local, but both sites must name the
same addresses: an address is shared by one primary and one backup only.
"""

from __future__ import annotations

from django.db import transaction

from appliance.models import AuditEvent
from failover import jobs, peer, schedule
from failover.models import BackupSettings, FailoverState, SharedIP
from failover.peer import BACKUP_SETTINGS, HELLO, PeerError
from failover.relationship import RelationshipError

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
    "synchronous_replication",
    "synchronous_timeout_seconds",
)


def save_backup_settings(settings_: BackupSettings, actor: object) -> str:
    """Save the backup settings here, apply the schedule, and hand them to the peer.

    Both sites keep the same settings so either page shows what is in force;
    the backup is the one that acts on them. Returns a sentence about the peer.
    """
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
        with peer.client_for_state(state) as client:
            client.post(BACKUP_SETTINGS, payload)
    except PeerError as error:
        return (
            f"They could not be handed to {state.peer_name}: {error.message} Save them again later."
        )
    return f"{state.peer_name} has them too."


def accept_backup_settings(values: dict) -> None:
    """The peer saved new backup settings: keep the same here and follow the schedule.

    A setting the peer does not know of (it runs an older version) stays as it is.
    """
    settings_ = BackupSettings.load()
    for name in BACKUP_SETTINGS_FIELDS:
        if name in values:
            setattr(settings_, name, values[name])
    with transaction.atomic():
        settings_.save()
        schedule.apply(settings_)
        AuditEvent.record(
            f"peer {FailoverState.load().peer_name}",
            "failover.backup_settings",
            f"Backup settings from the peer: sync {schedule.describe(settings_)}.",
        )


def different_shared_addresses(config: SharedIP, hello: dict) -> list[tuple[str, str]]:
    """(this site's, the peer's) for each shared address the two sites name differently.

    A family the peer does not report (an older version) or leaves empty is not
    compared: the peer may not have saved it yet.
    """
    found = []
    for field, mine in (("shared_ip", config.address), ("shared_ip6", config.address6)):
        theirs = str(hello.get(field) or "")
        if mine and theirs and theirs != mine:
            found.append((mine, theirs))
    return found


def save_shared_ip(config: SharedIP, actor: object) -> str:
    """Save this site's shared addresses, after checking the peer names the same ones.

    An address is shared by one primary and one backup only: two sites naming
    different addresses would each think they manage "the" shared IP.
    """
    state = FailoverState.load()
    peer_note = ""
    if state.is_paired and config.addresses:
        try:
            with peer.client_for_state(state) as client:
                hello = client.get(HELLO)
        except PeerError as error:
            peer_note = (
                f" The other site could not be asked which address it shares ({error.message})."
            )
        else:
            if differ := different_shared_addresses(config, hello):
                mine, theirs = differ[0]
                raise RelationshipError(
                    f"{state.peer_name} shares {theirs}, not {mine}. An address is shared by "
                    "one primary and one backup only: enter the same address on both sites.",
                    reason="shared_ip_mismatch",
                )
    with transaction.atomic():
        config.save()
        AuditEvent.record(
            actor,
            "failover.shared_ip",
            f"Shared IP {'enabled' if config.enabled else 'disabled'}: "
            f"{' and '.join(config.addresses) or 'no address'} on "
            f"{config.interface or 'no interface'}.",
        )
        transaction.on_commit(jobs.follow_role)
    return peer_note
