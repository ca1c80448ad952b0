"""The shared IP follows the role: held by the primary, released everywhere else.

The network worker (the one process with CAP_NET_ADMIN and CAP_NET_RAW) runs
`reconcile` every peer-check period and after each role change, and `announce`
a moment after a claim. It records what the interface has in Redis, for the
processes that cannot see it (under docker-compose the web has a network
namespace of its own). The operating system is reached only through
failover.system.shared_ip (the driver).
"""

from __future__ import annotations

import json
import logging

import redis
import requests
from django.conf import settings

from appliance.broker import connection
from failover import jobs, roles
from failover.models import FailoverEvent, FailoverState, Role, SharedIP
from failover.system.shared_ip import SharedAddress, SharedIPError, driver

logger = logging.getLogger(__name__)

FENCE_KEY = "appliance-failover:web-failures"
FENCE_AFTER = 2
SHARED_IP_ERROR_KEY = "appliance-failover:shared-ip-error"
HELD_KEY = "appliance-failover:shared-ip-held"
# The second burst of announcements follows the first after this long (keepalived's
# garp_master_delay is 5 s; clients of a takeover should not wait that long).
ANNOUNCE_AGAIN_SECONDS = 2


def configured_addresses() -> list[SharedAddress]:
    """The shared addresses entered on this site (IPv4 first), enabled or not."""
    config = SharedIP.load()
    if not config.interface:
        return []
    return [SharedAddress.parse(address, config.interface) for address in config.addresses]


def holding(*, recorded: bool = True) -> dict[SharedAddress, bool]:
    """Each shared address and whether this site holds it, as the network worker last saw.

    The worker that manages the addresses sees the interface; the web may not
    (under docker-compose it has a network namespace of its own). So the
    worker's record wins while it is fresh; without one (or `recorded=False`,
    when Redis is known not to answer), ask the interface.
    """
    found: dict[SharedAddress, bool] = {}
    addresses = configured_addresses()
    record = _recorded() if addresses and recorded else {}
    for shared in addresses:
        seen = record.get(str(shared), {}).get("held")
        if seen is None:
            try:
                seen = driver().holds(shared)
            except SharedIPError:
                seen = False
        found[shared] = seen
    return found


def holds_shared_ip() -> bool:
    """Whether this site holds a shared address (either of them)."""
    return any(holding().values())


def held_addresses(*, recorded: bool = True) -> list[str]:
    """The shared addresses (without prefix, IPv4 first) this site holds now, for the
    health reports."""
    return [shared.ip for shared, held in holding(recorded=recorded).items() if held]


def recorded_held_addresses() -> list[str]:
    """The same from the network worker's record alone, for when the database is down.

    The configured addresses live in the database; the record names them too. A
    record is renewed only by a worker that can read the database, so it lapses
    within three peer-check periods of the database going away.
    """
    return [
        address.split(" on ", 1)[0].rpartition("/")[0]
        for address, seen in _recorded().items()
        if seen.get("held")
    ]


def checked() -> dict[SharedAddress, str | None]:
    """Each shared address and what the network worker found wrong with it at its last
    check ("" when nothing; None when it has not checked it lately)."""
    recorded = _recorded()
    return {
        shared: recorded[str(shared)].get("problem", "") if str(shared) in recorded else None
        for shared in configured_addresses()
    }


def _record_holding(
    held: dict[SharedAddress, bool], problems: dict[SharedAddress, str] | None = None
) -> None:
    """Publish what the interface has, and what is wrong, for processes that cannot see it.

    An address missing from `held` is unknown. The record lasts three
    peer-check periods: reconcile renews it every period and on every change,
    so a record that outlives its worker says nothing.
    """
    problems = problems or {}
    record = {
        str(shared): {"held": held.get(shared), "problem": problems.get(shared, "")}
        for shared in {*held, *problems}
    }
    try:
        if not record:
            connection().delete(HELD_KEY)
        else:
            connection().set(HELD_KEY, json.dumps(record), ex=3 * settings.PEER_CHECK_SECONDS)
    except redis.RedisError:
        logger.warning("could not record the shared IP's holder in Redis")


def _recorded() -> dict[str, dict]:
    """The worker's record, by address ("192.0.2.10/24 on eth0"). A record of another
    address (the setting changed since) says nothing about this one."""
    try:
        raw = connection().get(HELD_KEY)
    except redis.RedisError:
        return {}
    if not raw:
        return {}
    return {str(key): dict(value) for key, value in json.loads(raw).items()}


def wants_shared_ip(state: FailoverState) -> bool:
    return SharedIP.load().is_configured and state.role == Role.PRIMARY and not web_is_fenced(state)


def reconcile(*, peer_checked: bool = False) -> str:
    """Make the interface match the role: hold the addresses on the primary, nowhere else.

    Runs every peer-check period and after each role change; mends drift and
    records it. Returns what it did, for logs and tests. Every period it also
    checks that the interface could hold each address (on the backup too, so a
    problem shows before a takeover needs it). Before claiming an address it
    asks the peer who is primary (unless `peer_checked`); the check for another
    holder (duplicate address detection) follows the claim, with the second
    announcement, so it does not delay the takeover.
    """
    addresses = configured_addresses()
    if not addresses:
        _record_holding({})
        _set_error("")
        return "no shared IP configured"
    state = FailoverState.load()
    want = wants_shared_ip(state)
    enabled = SharedIP.load().enabled
    problems: list[str] = []
    held: dict[SharedAddress, bool] = {}
    wrong: dict[SharedAddress, str] = {}
    for shared in addresses:
        try:
            if enabled:  # a disabled address is only ever released
                driver().check(shared)
            held[shared] = driver().holds(shared)
        except SharedIPError as error:
            wrong[shared] = str(error)
            problems.append(str(error))
    _record_holding(held, wrong)
    missing = [shared for shared, have in held.items() if want and not have]
    extra = [shared for shared, have in held.items() if have and not want]
    done = "in step"
    if missing and not peer_checked and roles.peer_is_primary(state):
        _set_error(" ".join(problems))
        return "the peer is primary: not claiming the address"
    took = []
    for shared in missing:
        try:
            driver().add(shared)
            held[shared] = True
            _record_holding(held, wrong)
            sent = driver().announce(shared)
        except SharedIPError as error:
            wrong[shared] = str(error)
            problems.append(str(error))
            continue
        took.append(f"{shared} ({sent} {shared.announcement})")
    if took:
        jobs.announce_shared_ip(check_holder=True, countdown=ANNOUNCE_AGAIN_SECONDS)
        _note(f"{settings.APPLIANCE_NAME} took the shared IP {' and '.join(took)}.")
        done = "added"
    released = []
    for shared in extra:
        try:
            driver().remove(shared)
        except SharedIPError as error:
            wrong[shared] = str(error)
            problems.append(str(error))
            continue
        held[shared] = False
        _record_holding(held, wrong)
        released.append(str(shared))
    if released:
        _note(
            f"{settings.APPLIANCE_NAME} released the shared IP {' and '.join(released)} "
            f"(role {state.role})."
        )
        done = "removed"
    _record_holding(held, wrong)
    _set_error(" ".join(problems))
    return f"error: {' '.join(problems)}" if problems else done


def announce(*, check_holder: bool = False) -> int:
    """A second burst of announcements, a moment after the first (as keepalived does).

    Gratuitous ARP for the IPv4 address, unsolicited neighbour advertisements
    for the IPv6 one. With `check_holder`, first look for another machine that
    still answers for each address (duplicate address detection) and record
    the conflict. Returns how many announcements went out.
    """
    if not wants_shared_ip(FailoverState.load()):
        return 0
    sent = 0
    for shared in configured_addresses():
        try:
            if not driver().holds(shared):
                continue  # its claim failed: announcing it would claim it without holding it
            if check_holder and (holder := driver().other_holder(shared)):
                FailoverEvent.record(
                    FailoverEvent.Kind.CONFLICT,
                    f"Another machine ({holder}) also answers for {shared.ip}, which "
                    f"{settings.APPLIANCE_NAME} holds as primary: the other holder must "
                    "release it.",
                    severity=FailoverEvent.Severity.DANGER,
                )
            sent += driver().announce(shared)
        except SharedIPError as error:
            _set_error(str(error))
    return sent


def _note(message: str) -> None:
    FailoverEvent.record(FailoverEvent.Kind.SHARED_IP, message)


def _set_error(message: str) -> None:
    previous = shared_ip_error()
    try:
        if message:
            connection().set(SHARED_IP_ERROR_KEY, message)
        else:
            connection().delete(SHARED_IP_ERROR_KEY)
    except Exception:
        logger.warning("could not store the shared-IP error in Redis")
    if message and message != previous:
        FailoverEvent.record(
            FailoverEvent.Kind.SHARED_IP, message, severity=FailoverEvent.Severity.DANGER
        )


def shared_ip_error() -> str:
    try:
        value = connection().get(SHARED_IP_ERROR_KEY)
    except Exception:
        return ""
    return value.decode() if value else ""


def web_is_fenced(state: FailoverState) -> bool:
    """A primary whose own web server stopped answering gives up the address.

    A host that answers ARP for a dead service would keep clients away from a
    healthy backup. Two failed checks in a row fence; one answer lifts it.
    """
    if state.role != Role.PRIMARY or not settings.WEB_SELF_URL:
        return False
    try:
        requests.get(settings.WEB_SELF_URL + "/check_health", timeout=2, verify=False)  # noqa: S501 - own loopback
        connection().delete(FENCE_KEY)
        return False
    except requests.RequestException:
        failures = connection().incr(FENCE_KEY)
        connection().expire(FENCE_KEY, 600)
        if failures == FENCE_AFTER:
            FailoverEvent.record(
                FailoverEvent.Kind.SHARED_IP,
                f"{settings.APPLIANCE_NAME}'s web server does not answer: releasing the shared IP "
                "so clients are not held at a dead service.",
                severity=FailoverEvent.Severity.DANGER,
            )
        return failures >= FENCE_AFTER


# Manual role changes ------------------------------------------------------------------
