"""Would failover work right now? Each check names what is wrong and how to mend it."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from appliance import health
from appliance.version import SOFTWARE_VERSION
from failover import roles
from failover.models import BackupSettings, FailoverState, Role, SharedIP, SyncRun
from failover.peer import PeerError
from failover.system import probe
from failover.system.shared_ip import driver

SYNC_AGE_WARNING_SECONDS = 26 * 3600


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def checks(*, test_network: bool = True) -> list[Check]:
    from failover.services import HELLO, client_for_state

    state = FailoverState.load()
    result: list[Check] = []
    if not state.is_paired:
        return [Check("relationship", False, "This site is not paired: establish a relationship.")]
    hello: dict = {}
    try:
        with client_for_state(state) as client:
            hello = client.get(HELLO)
        result.append(Check("peer", True, f"{state.peer_name} at {state.peer_address} answers."))
        result.append(Check("key", True, "Both sites hold the same pre-shared key."))
    except PeerError as error:
        result.append(Check("peer", False, error.message))
        if error.reason == "key_mismatch":
            result.append(Check("key", False, "The pre-shared keys differ: save the same on both."))
    if hello:
        same = hello.get("version") == SOFTWARE_VERSION
        result.append(
            Check(
                "version",
                same,
                f"Both run {SOFTWARE_VERSION}."
                if same
                else f"This site runs {SOFTWARE_VERSION}, "
                f"{state.peer_name} {hello.get('version')}.",
            )
        )
    config = SharedIP.load()
    peer_ip = hello.get("shared_ip", "") if hello else ""
    shared_ok = config.is_configured and (not hello or peer_ip == config.address)
    detail = (
        f"{config.address} on {config.interface}, the same on both sites."
        if shared_ok
        else "Enable the same shared IP on both sites (automatic failover needs it)."
        if not config.is_configured or not peer_ip
        else f"This site shares {config.address}, {state.peer_name} {peer_ip}: use one address."
    )
    result.append(Check("shared ip", shared_ok, detail))
    problem = roles.shared_ip_error()
    current = driver()
    if problem:
        result.append(Check("shared ip driver", False, problem))
    elif not current.real:
        result.append(Check("shared ip driver", False, "The demo driver only records the address."))
    else:
        result.append(Check("shared ip driver", True, "The worker manages the address."))
    settings_ = BackupSettings.load()
    if test_network and state.role == Role.BACKUP:
        from failover.monitor import test_targets

        found = probe.probe(test_targets(settings_))
        reached = [str(r.target) for r in found if r.reachable]
        result.append(
            Check(
                "test ips",
                bool(reached),
                f"Reached {', '.join(reached)}." if reached else "No connectivity test IP answers.",
            )
        )
    if state.role == Role.BACKUP:
        last = (
            SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED).order_by("-finished_at").first()
        )
        if last is None:
            result.append(Check("last sync", False, "No successful sync yet."))
        else:
            age = (timezone.now() - last.finished_at).total_seconds()
            result.append(
                Check(
                    "last sync",
                    age < SYNC_AGE_WARNING_SECONDS,
                    f"The last successful sync finished {int(age // 60)} minutes ago.",
                )
            )
        result.append(
            Check(
                "automatic failover",
                settings_.enable_backup_operations and settings_.automatic_failover,
                "Enabled." if settings_.automatic_failover else "Automatic failover is off.",
            )
        )
    for process in health.processes():
        result.append(Check(process.component, process.alive, process.detail))
    return result
