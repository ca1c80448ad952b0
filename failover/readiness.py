"""Would failover work right now? Each check names what is wrong and how to mend it.

Among them, every configured way to move the service to the primary: each
shared address (its interface, as the network worker last checked it), the
DNS swing (a signed query and an empty signed update to the zone's server),
and the takeover hooks (which would run, which are refused).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from appliance import health
from failover import compat, dns_swing, hooks, peer, replication, shared_ip
from failover.models import BackupSettings, DNSSwing, FailoverState, Role, SharedIP, SyncRun
from failover.monitor import test_targets
from failover.pair_settings import different_shared_addresses
from failover.peer import HELLO, PeerError
from failover.system import probe
from failover.system.shared_ip import driver

SYNC_AGE_WARNING_SECONDS = 26 * 3600
REPLICATION_LAG_WARNING_SECONDS = 60


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def checks(*, test_network: bool = True) -> list[Check]:
    state = FailoverState.load()
    result: list[Check] = []
    if not state.is_paired:
        return [Check("relationship", False, "This site is not paired: establish a relationship.")]
    hello: dict = {}
    try:
        with peer.client_for_state(state) as client:
            hello = client.get(HELLO)
        result.append(Check("peer", True, f"{state.peer_name} at {state.peer_address} answers."))
        result.append(Check("key", True, "Both sites hold the same pre-shared key."))
    except PeerError as error:
        result.append(Check("peer", False, error.message))
        if error.reason == "key_mismatch":
            result.append(Check("key", False, "The pre-shared keys differ: save the same on both."))
    if hello:
        result.append(compatibility_check(state, hello))
    result.extend(service_checks(state, hello))
    settings_ = BackupSettings.load()
    if test_network and state.role == Role.BACKUP:
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
    if settings_.is_continuous and state.role in (Role.BACKUP, Role.PRIMARY):
        result.append(replication_check())
    for process in health.processes():
        result.append(Check(process.component, process.alive, process.detail))
    return result


def compatibility_check(state: FailoverState, hello: dict) -> Check:
    """Whether the two sites' releases work together, in both directions (failover.compat)."""
    verdict = compat.assess(hello, state.peer_name)
    if not verdict.ok:
        return Check("version", False, verdict.sentence)
    if verdict.ours.version == verdict.theirs.version:
        return Check("version", True, f"Both run {verdict.ours.described}.")
    return Check(
        "version",
        True,
        f"This site runs {verdict.ours.described}, {state.peer_name} "
        f"{verdict.theirs.described}: they work together, syncs both ways included. Finish "
        "the upgrade (README, Upgrading a pair).",
    )


def replication_check() -> Check:
    """Continuous replication: connected, and how far behind."""
    lag = replication.lag()
    if lag.changes is None or not lag.connected:
        since = lag.contact_at.isoformat(timespec="seconds") if lag.contact_at else "never"
        return Check(
            "replication",
            False,
            f"Continuous replication is not connected (last contact {since})"
            + (f": {lag.error}" if lag.error else "."),
        )
    if lag.suspended_since:
        return Check(
            "replication",
            False,
            "Synchronous replication is suspended: writes are acknowledged without the backup.",
        )
    if lag.changes == 0:
        return Check("replication", True, "Continuous replication is in step.")
    return Check(
        "replication",
        (lag.seconds or 0) < REPLICATION_LAG_WARNING_SECONDS,
        f"Continuous replication is {lag.changes} change(s), {lag.seconds or 0:.1f} s behind.",
    )


def service_checks(state: FailoverState, hello: dict) -> list[Check]:
    """How clients would follow a takeover: the shared addresses, the DNS swing, the hooks."""
    config = SharedIP.load()
    swing = DNSSwing.load()
    found_hooks = hooks.describe()
    others = [
        way
        for way, configured in (
            ("the DNS swing", swing.is_configured),
            ("the takeover hooks", bool(found_hooks["hooks"])),
        )
        if configured
    ]
    result = []
    if config.is_configured:
        differ = different_shared_addresses(config, hello) if hello else []
        # A peer that reports no such field (an older version) is not asked about it.
        lacking = [
            mine
            for field, mine in (("shared_ip", config.address), ("shared_ip6", config.address6))
            if mine and field in hello and not hello[field]
        ]
        if differ:
            mine, theirs = differ[0]
            detail = f"This site shares {mine}, {state.peer_name} {theirs}: use one address."
        elif lacking:
            detail = f"{state.peer_name} does not share {lacking[0]}: enter it there too."
        else:
            detail = f"{' and '.join(config.addresses)} on {config.interface}" + (
                ", the same on both sites." if hello else "."
            )
        result.append(Check("shared ip", not (differ or lacking), detail))
        result.extend(_address_checks())
    elif others:
        result.append(
            Check("shared ip", True, f"No shared IP: clients follow {' and '.join(others)}.")
        )
    else:
        result.append(
            Check(
                "shared ip",
                False,
                "Nothing points clients at a new primary: enable the same shared IP on both "
                "sites, or a DNS swing, or install takeover hooks.",
            )
        )
    if swing.enabled:
        ok, detail = (
            dns_swing.check(swing, primary=state.role == Role.PRIMARY)
            if swing.is_configured
            else (False, "The DNS swing is enabled but not complete: fill in every field.")
        )
        result.append(Check("dns swing", ok, detail))
    if found_hooks["directory"]:
        result.append(_hooks_check(found_hooks))
    return result


def _address_checks() -> list[Check]:
    problem = shared_ip.shared_ip_error()
    current = driver()
    if problem:
        result = [Check("shared ip driver", False, problem)]
    elif not current.real:
        result = [Check("shared ip driver", False, "The demo driver only records the address.")]
    else:
        result = [Check("shared ip driver", True, "The network worker manages the addresses.")]
    held = shared_ip.holding()
    for shared, wrong in shared_ip.checked().items():
        name = f"shared ipv{shared.version}"
        if wrong is None:
            result.append(
                Check(name, False, f"{shared}: the network worker has not checked it lately.")
            )
        elif wrong:
            result.append(Check(name, False, wrong))
        else:
            result.append(
                Check(
                    name,
                    True,
                    f"{shared}: the interface can hold it; announced with {shared.announcement}; "
                    f"{'held' if held.get(shared) else 'not held'} by this site.",
                )
            )
    return result


def _hooks_check(found: dict) -> Check:
    where = found["directory"]
    if found["refused"]:
        return Check("hooks", False, "; ".join(found["refused"]) + ".")
    if not found["hooks"]:
        return Check("hooks", False, f"No executable hook in {where} (FAILOVER_HOOKS_DIR).")
    skipped = (
        f" Not executable, so skipped: {', '.join(found['skipped'])}." if found["skipped"] else ""
    )
    return Check(
        "hooks",
        True,
        f"{len(found['hooks'])} in {where} run on each role change "
        f"({', '.join(found['hooks'])}; timeout {found['timeout']} s).{skipped}",
    )
