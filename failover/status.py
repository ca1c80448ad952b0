"""What a site reports about itself: the CLI's `failover status` and the health API."""

from __future__ import annotations

from django.conf import settings

from appliance import health
from appliance.version import SOFTWARE_VERSION
from failover import replication
from failover.models import FailoverState, ScheduledBackup, SyncRun
from security.models import PreSharedKey


def site_status() -> dict[str, object]:
    state = FailoverState.load()
    psk = PreSharedKey.current()
    return {
        "site": settings.APPLIANCE_NAME,
        "version": SOFTWARE_VERSION,
        "role": state.role,
        "epoch": state.epoch,
        "key_fingerprint": psk.fingerprint if psk else None,
        "peer": {
            "name": state.peer_name,
            "address": state.peer_address,
            "role": state.peer_role,
            "epoch": state.peer_epoch,
            "reachable": state.peer_reachable,
            "last_check": state.peer_checked_at.isoformat() if state.peer_checked_at else None,
            "error": state.peer_error,
        }
        if state.is_paired
        else None,
        "processes": {p.component: p.as_dict() for p in health.processes()},
        "last_sync": last.as_dict() if (last := SyncRun.latest()) else None,
        "replication": replication.lag().as_dict() if state.is_paired else None,
        "scheduled_backup": scheduled_backup(),
    }


def scheduled_backup() -> dict[str, object] | None:
    """The daily backup's settings and last outcome (None when it is off)."""
    config = ScheduledBackup.load()
    if not config.enabled:
        return None
    return {
        "folder": config.folder,
        "keep": config.keep,
        "at": config.at.strftime("%H:%M"),
        "last_succeeded": config.last_succeeded,
        "last_finished_at": config.last_finished_at.isoformat()
        if config.last_finished_at
        else None,
        "last_file": config.last_file,
        "last_size": config.last_size,
        "last_error": config.last_error,
    }
