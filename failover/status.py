"""What a site reports about itself: the CLI's `failover status` and the health API."""

from __future__ import annotations

from django.conf import settings

from appliance import health
from failover.models import FailoverState, SyncRun
from security.models import PreSharedKey


def site_status() -> dict[str, object]:
    state = FailoverState.load()
    psk = PreSharedKey.current()
    return {
        "site": settings.APPLIANCE_NAME,
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
    }
