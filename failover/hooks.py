"""Takeover hooks: the machine administrator's own commands, run on each role change.

For what the pair cannot do itself: a NAT rule on a firewall, an address moved
by a cloud's API, a service started or stopped. The hooks live in a folder the
administrator of the machine names (FAILOVER_HOOKS_DIR); the web pages only
show them. A site runs them for every role change with the new role, the epoch
and the shared addresses (failover.takeover orders them: "backup" and "none"
before the site releases its addresses, "primary" after it has claimed them).
Each run is a line in the status history with its exit status and output; a
failure, a timeout or a refused hook alerts.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from failover.models import DNSSwing, FailoverEvent, FailoverState, SharedIP
from failover.system import hooks
from failover.system.hooks import HookRun

# The environment a hook starts from: a search path and a locale, nothing of the site's.
BASE_ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


def directory() -> Path | None:
    return Path(settings.FAILOVER_HOOKS_DIR) if settings.FAILOVER_HOOKS_DIR else None


def arguments(state: FailoverState) -> tuple[list[str], dict[str, str]]:
    """What a hook is told: `ROLE EPOCH [ADDRESS ...]`, and the same and more as variables.

    The addresses are the shared addresses with their prefixes, IPv4 first.
    """
    shared = SharedIP.load()
    addresses = shared.addresses if shared.enabled else []
    swing = DNSSwing.load()
    environment = {
        **BASE_ENVIRONMENT,
        "FAILOVER_ROLE": str(state.role),
        "FAILOVER_EPOCH": str(state.epoch),
        "FAILOVER_SITE": settings.APPLIANCE_NAME,
        "FAILOVER_PEER": state.peer_name,
        "FAILOVER_ADDRESSES": " ".join(addresses),
        "FAILOVER_SHARED_IPV4": shared.address if shared.enabled else "",
        "FAILOVER_SHARED_IPV6": shared.address6 if shared.enabled else "",
        "FAILOVER_INTERFACE": shared.interface if shared.enabled else "",
        "FAILOVER_DNS_NAME": swing.name if swing.enabled else "",
        "FAILOVER_DNS_IPV4": (swing.ipv4 or "") if swing.enabled else "",
        "FAILOVER_DNS_IPV6": (swing.ipv6 or "") if swing.enabled else "",
    }
    return [str(state.role), str(state.epoch), *addresses], environment


def run_for_role(state: FailoverState) -> list[HookRun]:
    """Run every hook for the role `state` has just taken; record each run. Returns them."""
    folder = directory()
    if folder is None:
        return []
    found = hooks.find(folder)
    for problem in found.refused:
        FailoverEvent.record(
            FailoverEvent.Kind.HOOK_FAILED,
            f"Takeover hook refused on {settings.APPLIANCE_NAME} ({state.role}, epoch "
            f"{state.epoch}): {problem}.",
            severity=FailoverEvent.Severity.DANGER,
        )
    args, environment = arguments(state)
    done = []
    for path in found.hooks:
        run = hooks.run(path, args, environment, settings.FAILOVER_HOOK_TIMEOUT_SECONDS)
        _record(state, run)
        done.append(run)
    return done


def _record(state: FailoverState, run: HookRun) -> None:
    what = f"Hook {run.name} ({state.role}, epoch {state.epoch}) on {settings.APPLIANCE_NAME}"
    if run.error:
        outcome = f"could not start: {run.error}"
    elif run.timed_out:
        outcome = (
            f"did not finish within {settings.FAILOVER_HOOK_TIMEOUT_SECONDS} s "
            "(FAILOVER_HOOK_TIMEOUT_SECONDS) and was killed"
        )
    else:
        outcome = f"exited with status {run.exit_status} after {run.seconds:.2f} s"
    output = f" Output: {run.output}" if run.output else " No output."
    FailoverEvent.record(
        FailoverEvent.Kind.HOOK if run.ok else FailoverEvent.Kind.HOOK_FAILED,
        f"{what} {outcome}.{output}",
        severity=FailoverEvent.Severity.INFO if run.ok else FailoverEvent.Severity.DANGER,
    )


def describe() -> dict[str, object]:
    """The hooks as the Failover page and `failover check` show them."""
    folder = directory()
    if folder is None:
        return {"directory": "", "hooks": [], "skipped": [], "refused": [], "timeout": 0}
    found = hooks.find(folder)
    return {
        "directory": str(folder),
        "hooks": [path.name for path in found.hooks],
        "skipped": found.skipped,
        "refused": found.refused,
        "timeout": settings.FAILOVER_HOOK_TIMEOUT_SECONDS,
    }
