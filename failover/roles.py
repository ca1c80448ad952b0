"""Role changes and the shared IP that follows the role.

Every role change raises the epoch (compare-and-set on FailoverState), is an
event in the status history and an audit record, and is followed by a
reconcile of the shared IP on the network queue. A primary gives up the
address before its peer takes it wherever the peer can be asked.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import redis
import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from appliance.broker import connection
from appliance.models import AuditEvent
from failover.models import FailoverEvent, FailoverState, Role, SharedIP, SyncRun
from failover.peer import PeerError
from failover.system.shared_ip import SharedAddress, SharedIPError, driver

logger = logging.getLogger(__name__)

ROLE = "/api/peer/v1/role"
FENCE_KEY = "appliance-failover:web-failures"
FENCE_AFTER = 2
SHARED_IP_ERROR_KEY = "appliance-failover:shared-ip-error"
HELD_KEY = "appliance-failover:shared-ip-held"
RELEASE_WAIT_SECONDS = 15
FINAL_SYNC_SECONDS = 30 * 60
# A sync that was running at the freeze, then the final one (and one spare, should
# a scheduled sync slip in between).
FINAL_SYNC_ATTEMPTS = 3


class RoleError(Exception):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def _after_role_change(*, peer_checked: bool = False) -> None:
    from failover import tasks

    transaction.on_commit(lambda: tasks.reconcile_shared_ip.delay(peer_checked=peer_checked))


def promote(
    reason: str,
    actor: object,
    *,
    kind: str = FailoverEvent.Kind.ROLE_CHANGED,
    peer_checked: bool = False,
    at_least: int = 0,
) -> None:
    """This site becomes primary (epoch + 1); the shared IP follows.

    `peer_checked`: the caller has just found the peer unreachable (the monitor),
    so the claim of the address does not wait to ask it again. The new epoch is
    above every one seen and above `at_least`.
    """
    with transaction.atomic():
        state = FailoverState.load()
        was = state.role
        state.promote(at_least=at_least)
        message = (
            f"{settings.APPLIANCE_NAME} became primary (was {was}, epoch {state.epoch}): {reason}"
        )
        FailoverEvent.record(kind, message, severity=FailoverEvent.Severity.WARNING, actor=actor)
        AuditEvent.record(actor, "failover.role_changed", message)
        _after_role_change(peer_checked=peer_checked)


def demote(epoch: int, reason: str, actor: object) -> None:
    """This site becomes backup under `epoch`; it releases the shared IP."""
    with transaction.atomic():
        state = FailoverState.load()
        was = state.role
        state.demote(epoch=epoch)
        message = (
            f"{settings.APPLIANCE_NAME} became backup (was {was}, epoch {state.epoch}): {reason}"
        )
        FailoverEvent.record(
            FailoverEvent.Kind.ROLE_CHANGED,
            message,
            severity=FailoverEvent.Severity.WARNING,
            actor=actor,
        )
        AuditEvent.record(actor, "failover.role_changed", message)
        _after_role_change()


# The shared IP -------------------------------------------------------------------------


def configured_address() -> SharedAddress | None:
    config = SharedIP.load()
    if not (config.address and config.interface):
        return None
    return SharedAddress.parse(config.address, config.interface)


def holds_shared_ip() -> bool:
    """Whether this site holds the shared IP, as the network worker last saw it.

    The worker that manages the address sees the interface; the web may not
    (under docker-compose it has a network namespace of its own). So the
    worker's record wins while it is fresh; without one, ask the interface.
    """
    shared = configured_address()
    if shared is None:
        return False
    seen = _recorded_holding(shared)
    if seen is not None:
        return seen
    try:
        return driver().holds(shared)
    except SharedIPError:
        return False


def _record_holding(shared: SharedAddress | None, held: bool | None) -> None:
    """Publish what the interface has (None: unknown) for processes that cannot see it.

    It lasts three peer-check periods: reconcile renews it every period and on
    every change, so a record that outlives its worker says nothing.
    """
    try:
        if shared is None or held is None:
            connection().delete(HELD_KEY)
        else:
            record = json.dumps({"address": str(shared), "held": held})
            connection().set(HELD_KEY, record, ex=3 * settings.PEER_CHECK_SECONDS)
    except redis.RedisError:
        logger.warning("could not record the shared IP's holder in Redis")


def _recorded_holding(shared: SharedAddress) -> bool | None:
    try:
        raw = connection().get(HELD_KEY)
    except redis.RedisError:
        return None
    if not raw:
        return None
    record = json.loads(raw)
    # A record of another address (the setting changed since) says nothing about this one.
    return bool(record["held"]) if record.get("address") == str(shared) else None


def wants_shared_ip(state: FailoverState) -> bool:
    return SharedIP.load().is_configured and state.role == Role.PRIMARY and not web_is_fenced(state)


def reconcile(*, peer_checked: bool = False) -> str:
    """Make the interface match the role: hold the address on the primary, nowhere else.

    Runs every peer-check period and after each role change; mends drift and
    records it. Returns what it did, for logs and tests. Before claiming the
    address it asks the peer who is primary (unless `peer_checked`); the check
    for another holder (duplicate address detection) follows the claim, with
    the second announcement, so it does not delay the takeover.
    """
    shared = configured_address()
    if shared is None:
        _record_holding(None, None)
        return "no shared IP configured"
    state = FailoverState.load()
    want = wants_shared_ip(state)
    try:
        have = driver().holds(shared)
        _record_holding(shared, have)
        if want and not have:
            if not peer_checked and _peer_is_primary(state):
                return "the peer is primary: not claiming the address"
            driver().add(shared)
            _record_holding(shared, True)
            sent = driver().announce(shared)
            from failover import tasks

            tasks.announce_shared_ip.apply_async(kwargs={"check_holder": True}, countdown=2)
            _note(f"{settings.APPLIANCE_NAME} took the shared IP {shared} ({sent} gratuitous ARP).")
            done = "added"
        elif have and not want:
            driver().remove(shared)
            _record_holding(shared, False)
            _note(f"{settings.APPLIANCE_NAME} released the shared IP {shared} (role {state.role}).")
            done = "removed"
        else:
            done = "in step"
    except SharedIPError as error:
        _record_holding(None, None)
        _set_error(str(error))
        return f"error: {error}"
    _set_error("")
    return done


def _peer_is_primary(state: FailoverState) -> bool:
    """Before claiming the address (e.g. after a restart), ask the peer who is primary.

    A peer that is primary under an epoch at least ours wins; this site settles
    its role instead of taking the address. An unreachable peer cannot object.
    """
    from failover.services import HELLO, client_for_state, settle_roles

    if not state.is_paired:
        return False
    from failover.models import BackupSettings
    from failover.monitor import poll_timeout

    try:
        # As patient as a poll: a peer that would fail a poll cannot object either.
        with client_for_state(state, timeout=poll_timeout(BackupSettings.load())) as client:
            hello = client.get(HELLO)
    except PeerError:
        return False
    if hello.get("role") == Role.PRIMARY and int(hello.get("epoch") or 0) >= state.epoch:
        settle_roles(state, hello)
        return True
    return False


def check_peer_on_start() -> str:
    """A site that starts as primary asks its peer first (before it serves).

    While it was down its backup may have taken over: a peer that is primary
    under a newer epoch makes this site backup before its web answers anyone.
    An unreachable peer cannot object (the address still waits for `reconcile`).
    """
    state = FailoverState.load()
    if state.role != Role.PRIMARY:
        return f"Starting as {state.role} (epoch {state.epoch})."
    if not _peer_is_primary(state):
        return f"Starting as primary (epoch {state.epoch}); {state.peer_name} did not object."
    now = FailoverState.load()
    if now.role == Role.BACKUP:
        return f"Starting as backup (epoch {now.epoch}): {state.peer_name} is primary now."
    return (
        f"Starting as primary (epoch {now.epoch}), but {state.peer_name} claims it too: "
        "see the Failover page."
    )


def announce(*, check_holder: bool = False) -> int:
    """A second burst of gratuitous ARP, a moment after the first (as keepalived does).

    With `check_holder`, first look for another machine that still answers for
    the address (duplicate address detection) and record the conflict.
    """
    shared = configured_address()
    if shared is None or not wants_shared_ip(FailoverState.load()):
        return 0
    try:
        if check_holder and (holder := driver().other_holder(shared)):
            FailoverEvent.record(
                FailoverEvent.Kind.CONFLICT,
                f"Another machine ({holder}) also answers for {shared.ip}, which "
                f"{settings.APPLIANCE_NAME} holds as primary: the other holder must release it.",
                severity=FailoverEvent.Severity.DANGER,
            )
        return driver().announce(shared)
    except SharedIPError as error:
        _set_error(str(error))
        return 0


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


def become_primary(actor: object, *, sync_first: bool) -> str:
    """On the backup: take the primary role by hand (the seed's Become Primary).

    With `sync_first` the primary stops taking changes, the backup pulls a final
    sync, the primary steps down and releases the address, and only then does
    this site take over. Without it this site takes over at once and tells the
    other site to step down when it can be reached.
    """
    from failover.services import client_for_state
    from failover.sync import runs

    state = FailoverState.load()
    if state.role != Role.BACKUP:
        raise RoleError(
            f"This site is {state.role}: only a backup can become primary.", reason="not_backup"
        )
    epoch = max(state.epoch, state.peer_epoch or 0) + 1
    try:
        with client_for_state(state) as client:
            if sync_first:
                client.post(ROLE, {"action": "freeze"})
                try:
                    _final_sync(runs)
                except RoleError:
                    client.post(ROLE, {"action": "thaw"})
                    raise
            client.post(ROLE, {"action": "step_down", "epoch": epoch})
            _wait_for_release(client)
    except PeerError as error:
        if sync_first:
            raise RoleError(
                f"The final sync needs the primary, which cannot be reached: {error.message} "
                "Nothing was changed. Become Primary without the sync if the primary is gone.",
                reason=error.reason,
            ) from None
        logger.warning("old primary not told to step down: %s", error.message)
    promote(
        f"Become Primary by {getattr(actor, 'username', actor)}"
        f"{' after a final sync' if sync_first else ''}.",
        actor,
    )
    return f"This site is now primary (epoch {FailoverState.load().epoch})."


def _final_sync(runs: object) -> None:
    """Pull a sync that starts after the freeze, and wait for it (bounded).

    A sync already running began before the freeze and may miss the last writes:
    it is let finish (whatever its outcome), then the final sync starts.
    """
    deadline = time.monotonic() + FINAL_SYNC_SECONDS
    for _ in range(FINAL_SYNC_ATTEMPTS):
        run, created = runs.request_sync(SyncRun.Trigger.BECOME_PRIMARY, by="become-primary")
        _wait_for_run(run, deadline)
        if created:
            break
    else:
        run = None
    if run is None or run.status != SyncRun.Status.SUCCEEDED:
        what = (
            f"#{run.pk} did not succeed ({run.error or run.status})" if run else "could not start"
        )
        raise RoleError(
            f"The final sync {what}; this site stays backup and the primary takes changes again.",
            reason="sync_failed",
        )


def _wait_for_run(run: SyncRun, deadline: float) -> None:
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            return
        time.sleep(0.5)


def _wait_for_release(client: object) -> None:
    """Wait (bounded) until the old primary no longer holds the shared IP."""
    from failover.services import HELLO

    deadline = time.monotonic() + RELEASE_WAIT_SECONDS
    while time.monotonic() < deadline:
        if not client.get(HELLO).get("holds_shared_ip"):
            return
        time.sleep(0.5)
    raise RoleError(
        "The old primary still holds the shared IP after stepping down; this site did not "
        "take it. Check the old primary's worker.",
        reason="release_timeout",
    )


def become_backup(actor: object, *, force: bool, sync_first: bool = False) -> str:
    """On the primary: hand the primary role to the peer, or with `force` step down alone.

    The peer's worker does the handover as in Become Primary (with a final sync
    first if asked): it asks this site to step down, waits until this site has
    released the shared IP, then takes over.
    """
    from failover.services import client_for_state

    state = FailoverState.load()
    if state.role != Role.PRIMARY:
        raise RoleError(
            f"This site is {state.role}: only a primary can become backup.", reason="not_primary"
        )
    try:
        with client_for_state(state) as client:
            client.post(ROLE, {"action": "become_primary", "sync_first": sync_first})
    except PeerError as error:
        if not force:
            raise RoleError(
                f"The other site could not take over: {error.message} This site stays primary. "
                "Use Force to step down anyway (the service then has no primary).",
                reason=error.reason,
            ) from None
        epoch = max(state.epoch, state.peer_epoch or 0) + 1
        demote(epoch, f"Become Backup (forced) by {getattr(actor, 'username', actor)}.", actor)
        return f"This site is now backup. The other site could not be told: {error.message}"
    return (
        f"{state.peer_name} is taking over: it asks this site to step down and release the "
        "shared IP, then becomes primary. The status history shows each step."
    )


def record_refused_change(action: str, actor: object, error: RoleError) -> None:
    """A role change asked from the page failed in the worker: say so in the history."""
    what = "Become Primary" if action == "become_primary" else "Become Backup"
    FailoverEvent.record(
        FailoverEvent.Kind.ERROR,
        f"{what} did not happen: {error.message}",
        severity=FailoverEvent.Severity.DANGER,
        actor=actor,
    )


# Conflicts -----------------------------------------------------------------------------

EXPORTED_MODELS = ("auth.group", "auth.user", "appliance.sitesettings", "appliance.report")


def export_data(reason: str) -> Path:
    """Save this site's synced data to a file before a sync may overwrite it."""
    from django.core.management import call_command

    folder = exports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{timezone.now():%Y%m%d-%H%M%S}-{settings.APPLIANCE_NAME}.json"
    call_command("dumpdata", *EXPORTED_MODELS, output=str(path), verbosity=0)
    FailoverEvent.record(
        FailoverEvent.Kind.CONFLICT,
        f"{settings.APPLIANCE_NAME}'s data was saved to {path.name} before it becomes backup "
        f"({reason}). Download it from the Failover page.",
    )
    return path


def exports_dir() -> Path:
    return settings.DATA_DIR / "exports"


def fix_conflict(actor: object) -> str:
    """Fix This Error: decide who is primary by the stated rules and make it so.

    Rules, in order: the higher epoch is primary; at equal epochs, the site that
    holds the shared IP; otherwise this site (where the administrator acts).
    The losing side exports its data before it becomes backup.
    """
    from failover.services import HELLO, client_for_state

    state = FailoverState.load()
    try:
        with client_for_state(state) as client:
            hello = client.get(HELLO)
            mine = (state.epoch, holds_shared_ip(), 1)
            theirs = (int(hello.get("epoch") or 0), bool(hello.get("holds_shared_ip")), 0)
            if mine > theirs:
                raise_epoch = state.role != Role.PRIMARY or theirs[0] >= state.epoch
                epoch = max(state.epoch, state.peer_epoch or 0, theirs[0]) + 1
                # The other site yields first: it exports its data, then becomes backup
                # under the new epoch. Were this site to take the epoch first, the other
                # one's next peer check could make it backup without the export.
                client.post(
                    ROLE, {"action": "yield", "epoch": epoch if raise_epoch else state.epoch}
                )
                if raise_epoch:
                    promote(
                        "Fix This Error: this site wins by the rules.", actor, at_least=epoch - 1
                    )
                epoch = FailoverState.load().epoch
                return f"This site is primary (epoch {epoch}); {state.peer_name} is backup."
            export_data("Fix This Error")
            if hello.get("role") != Role.PRIMARY:
                client.post(ROLE, {"action": "become_primary"})
            else:
                demote(theirs[0], "Fix This Error: the other site wins by the rules.", actor)
            return f"{state.peer_name} is primary; this site is backup and its data was exported."
    except PeerError as error:
        raise RoleError(
            f"The conflict can only be fixed while {state.peer_name} answers: {error.message}",
            reason=error.reason,
        ) from None
