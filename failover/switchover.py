"""Handing the primary role over by hand: Become Primary and Become Backup.

Become Primary with a final sync freezes the primary (it takes no writes), pulls
a sync that starts after the freeze, has the primary step down and release the
shared IP, and only then takes over, so nothing written before the freeze is
lost and the address is never held twice. The page and the other site's request
start these in the worker (`start`); the Command API's `set_failover_role` does
what is quick itself and leaves the final sync to the worker; the other site's
part arrives through the peer API (`accept`).

One role change runs at a time on a site: each holds a claim in Redis for as long
as it runs (a change queued for the worker claims when it is queued, and is
dropped if the worker does not start it soon).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from django.conf import settings
from django.utils import timezone

from appliance.broker import connection
from failover import exports, hooks, jobs, peer, replication, roles, writes
from failover.models import FailoverEvent, FailoverState, Role, SyncRun
from failover.peer import HELLO, ROLE, PeerClient, PeerError
from failover.roles import RoleError
from failover.sync import runs

logger = logging.getLogger(__name__)

RELEASE_WAIT_SECONDS = 15
FINAL_SYNC_SECONDS = 30 * 60
# A sync that was running at the freeze, then the final one (and one spare, should
# a scheduled sync slip in between).
FINAL_SYNC_ATTEMPTS = 3
# How long a freeze waits for writes that started before it.
FREEZE_DRAIN_SECONDS = 20
PEER_ACTIONS = ("freeze", "thaw", "step_down", "yield", "become_primary")
ACTION_NAMES = {"become_primary": "Become Primary", "become_backup": "Become Backup"}

# The claim of the role change running on this site. It lasts as long as the longest
# change can (a final sync, then the release), so a killed worker blocks nothing for long.
CLAIM_KEY = "appliance-failover:role-change"
CLAIM_SECONDS = FINAL_SYNC_SECONDS + 2 * RELEASE_WAIT_SECONDS + 60
# A change queued for the worker that has not started within this is dropped: a role
# change that runs long after it was asked for would surprise everyone.
QUEUED_SECONDS = 60
# set_failover_role role=backup: how long the request waits for the other site to take
# over (its worker starts the handover, asks this site to step down, then takes over).
HANDOVER_WAIT_SECONDS = QUEUED_SECONDS + 15

# BeyondTrust's answers to set_failover_role.
ROLE_CHANGED = "Successfully changed role."
SYNC_STARTED = "Successfully started data sync. Role change will occur upon successful completion."

_SWAP = """
local held = redis.call('GET', KEYS[1])
if held and string.find(held, ARGV[1], 1, true) then
  if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class RoleChange:
    """What `set_failover_role` did: the role changed, or a final data sync runs first."""

    completed: bool

    @property
    def detail(self) -> str:
        return ROLE_CHANGED if self.completed else SYNC_STARTED


# The claim --------------------------------------------------------------------------


def _claim_record(token: str, action: str, actor: str, *, queued: bool) -> str:
    return json.dumps(
        {
            "token": token,
            "action": action,
            "actor": actor,
            "since": timezone.now().isoformat(timespec="seconds"),
            "queued": queued,
        }
    )


def _claim(action: str, actor: str, *, queued: bool) -> str:
    """Claim the site's one role change; its token. Raises RoleError when one runs."""
    token = uuid.uuid4().hex
    record = _claim_record(token, action, actor, queued=queued)
    try:
        took = connection().set(
            CLAIM_KEY, record, nx=True, ex=QUEUED_SECONDS if queued else CLAIM_SECONDS
        )
    except redis.RedisError as error:
        raise RoleError(
            f"This site's Redis does not answer ({error}), so no role change can start.",
            reason="broker",
        ) from None
    if not took:
        raise RoleError(running_change() or "A role change is already running.", reason="running")
    return token


def _swap_claim(token: str, record: str, seconds: int) -> bool:
    """Compare-and-set on the claim: replace it (or with record "" delete it) if it is ours."""
    try:
        return bool(connection().eval(_SWAP, 1, CLAIM_KEY, token, record, seconds))
    except redis.RedisError:
        logger.warning("could not update the role change's claim in Redis")
        return False


def running_change() -> str:
    """A sentence about the role change running on this site, or "" when none runs."""
    try:
        raw = connection().get(CLAIM_KEY)
    except redis.RedisError:
        return ""
    if not raw:
        return ""
    record = json.loads(raw)
    what = ACTION_NAMES.get(record["action"], record["action"])
    state = "queued for the worker" if record["queued"] else "running"
    return (
        f"A role change is already {state} on {settings.APPLIANCE_NAME}: {what}, asked by "
        f"{record['actor']} at {record['since']}. Wait until it ends (the status history "
        "shows each step)."
    )


@contextmanager
def claimed(action: str, actor: str) -> Iterator[None]:
    """Hold the site's role-change claim while the block runs (the CLI, the Command API)."""
    token = _claim(action, actor, queued=False)
    try:
        yield
    finally:
        _swap_claim(token, "", 0)


# Starting a role change -------------------------------------------------------------


def start(action: str, actor: str, flag: bool) -> None:
    """Queue Become Primary (flag: sync first) or Become Backup (flag: force) for the worker:
    a final sync can take a while, and a page or an API call never waits for it.

    Raises RoleError when a role change already runs on this site.
    """
    token = _claim(action, actor, queued=True)
    jobs.change_role(action, actor, flag, token=token)


def check_role_request(state: FailoverState, role: str) -> None:
    """Refuse a role change that cannot start: a wrong role, no relationship, already in it,
    or another change running (here, or the other site's final sync from this one)."""
    if role not in (Role.PRIMARY, Role.BACKUP):
        raise RoleError(f"role must be primary or backup, not {role!r}.", reason="invalid_role")
    if state.role == Role.NONE:
        raise RoleError(
            "Failover is not configured on this site: it has no relationship with another "
            "site. Establish one on the Failover page first.",
            reason="not_configured",
        )
    if state.role == role:
        raise RoleError(f"This site is already {role}.", reason="already")
    if state.switching_over:
        raise RoleError(
            f"A switchover is running: {state.peer_name} is pulling a final data sync from "
            "this site before it takes over. Wait until it ends (the status history shows "
            "each step).",
            reason="running",
        )
    if running := running_change():
        raise RoleError(running, reason="running")


def set_failover_role(role: str, actor: str, *, data_sync_first: bool, force: bool) -> RoleChange:
    """The Command API's `set_failover_role`, with BeyondTrust's meaning. Raises RoleError.

    role=primary (on the backup): take over, telling the old primary to step down; with
    `data_sync_first`, pull a final sync from it first (in the worker: it can take a
    while), which needs it reachable. role=backup (on the primary): hand the role to
    the other site, which pulls a final sync first with `data_sync_first`; with `force`,
    step down alone when the other site cannot be reached.
    """
    state = FailoverState.load()
    check_role_request(state, role)
    if role == Role.PRIMARY and data_sync_first:
        _check_reachable(state)
        start("become_primary", actor, True)
        return RoleChange(completed=False)
    action = "become_primary" if role == Role.PRIMARY else "become_backup"
    with claimed(action, actor):
        if role == Role.PRIMARY:
            become_primary(actor, sync_first=False)
            return RoleChange(completed=True)
        become_backup(actor, force=force, sync_first=data_sync_first)
        if FailoverState.load().role == Role.BACKUP:
            return RoleChange(completed=True)  # forced: the other site could not be told
        if data_sync_first:
            return RoleChange(completed=False)
        _wait_for_handover(state)
    return RoleChange(completed=True)


def _check_reachable(state: FailoverState) -> None:
    """A final sync needs the primary: refuse at once when it does not answer."""
    try:
        with peer.client_for_state(state) as client:
            client.get(HELLO)
    except PeerError as error:
        raise RoleError(
            f"The final data sync needs the primary, {state.peer_name}, which cannot be "
            f"reached: {error.message} Nothing was changed. Without data_sync_first this "
            "site takes over without it.",
            reason=error.reason,
        ) from None


def _wait_for_handover(before: FailoverState) -> None:
    """Wait (bounded) until the other site has had this one step down."""
    deadline = time.monotonic() + HANDOVER_WAIT_SECONDS
    while time.monotonic() < deadline:
        if FailoverState.load().role == Role.BACKUP:
            return
        time.sleep(0.25)
    raise RoleError(
        f"{before.peer_name} accepted the handover but has not taken over within "
        f"{HANDOVER_WAIT_SECONDS} s; this site is still primary. Is its worker running? The "
        "status history of both sites shows what happened.",
        reason="handover_timeout",
    )


def change_role(action: str, actor: str, flag: bool, token: str = "") -> None:
    """In the worker: carry out a role change queued by `start` under its claim."""
    running = _claim_record(token, action, actor, queued=False)
    if not token or not _swap_claim(token, running, CLAIM_SECONDS):
        record_refused_change(
            action,
            actor,
            RoleError(
                f"the worker did not start it within {QUEUED_SECONDS} s of the request, "
                "so it was dropped. Ask again if it is still wanted.",
                reason="dropped",
            ),
        )
        return
    try:
        if action == "become_primary":
            become_primary(actor, sync_first=flag)
        else:
            become_backup(actor, force=flag)
    except RoleError as error:
        record_refused_change(action, actor, error)
    finally:
        _swap_claim(token, "", 0)


def become_primary(actor: object, *, sync_first: bool) -> str:
    """On the backup: take the primary role by hand (the seed's Become Primary).

    With `sync_first` the primary stops taking changes, the backup pulls a final
    sync, the primary steps down and releases the address, and only then does
    this site take over. Without it this site takes over at once and tells the
    other site to step down when it can be reached.
    """
    state = FailoverState.load()
    if state.role != Role.BACKUP:
        raise RoleError(
            f"This site is {state.role}: only a backup can become primary.", reason="not_backup"
        )
    if sync_first and state.peer_incompatible:
        raise RoleError(
            f"A final sync from {state.peer_name} cannot work: {state.peer_incompatible} "
            "Nothing was changed.",
            reason="incompatible",
        )
    epoch = max(state.epoch, state.peer_epoch or 0) + 1
    try:
        with peer.client_for_state(state) as client:
            if sync_first:
                client.post(ROLE, {"action": "freeze"})
                try:
                    _final_sync()
                except RoleError:
                    client.post(ROLE, {"action": "thaw"})
                    raise
            # With its cursor: all it has applied, for the old primary to keep what it has not.
            client.post(
                ROLE,
                {
                    "action": "step_down",
                    "epoch": epoch,
                    # All this site has applied, for the old primary to keep what it has
                    # not; and where this site's own log stands, to follow it from there.
                    "cursor": replication.applied_cursor(),
                    "log": replication.own_log(),
                },
            )
            _wait_for_release(client)
    except PeerError as error:
        if sync_first:
            raise RoleError(
                f"The final sync needs the primary, which cannot be reached: {error.message} "
                "Nothing was changed. Become Primary without the sync if the primary is gone.",
                reason=error.reason,
            ) from None
        logger.warning("old primary not told to step down: %s", error.message)
    roles.promote(
        f"Become Primary by {getattr(actor, 'username', actor)}"
        f"{' after a final sync' if sync_first else ''}.",
        actor,
    )
    return f"This site is now primary (epoch {FailoverState.load().epoch})."


def _final_sync() -> None:
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


def _wait_for_release(client: PeerClient) -> None:
    """Wait (bounded) until the old primary no longer holds the shared IP.

    It runs its takeover hooks before it releases: the wait allows for them
    too (as long as this site's own would take; the pair is set up alike).
    """
    hooks_allowance = len(hooks.describe()["hooks"]) * settings.FAILOVER_HOOK_TIMEOUT_SECONDS
    deadline = time.monotonic() + RELEASE_WAIT_SECONDS + hooks_allowance
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
    state = FailoverState.load()
    if state.role != Role.PRIMARY:
        raise RoleError(
            f"This site is {state.role}: only a primary can become backup.", reason="not_primary"
        )
    try:
        with peer.client_for_state(state) as client:
            client.post(ROLE, {"action": "become_primary", "sync_first": sync_first})
    except PeerError as error:
        if error.reason == "rejected":
            # It answered, and said no: forcing would leave the pair without a primary.
            raise RoleError(
                f"The other site refused to take over: {error.message} This site stays primary.",
                reason="refused",
            ) from None
        if not force:
            raise RoleError(
                f"The other site could not take over: {error.message} This site stays primary. "
                "Use Force to step down anyway (the service then has no primary).",
                reason=error.reason,
            ) from None
        epoch = max(state.epoch, state.peer_epoch or 0) + 1
        roles.demote(
            epoch, f"Become Backup (forced) by {getattr(actor, 'username', actor)}.", actor
        )
        return f"This site is now backup. The other site could not be told: {error.message}"
    return (
        f"{state.peer_name} is taking over: it asks this site to step down and release the "
        "shared IP, then becomes primary. The status history shows each step."
    )


def record_refused_change(action: str, actor: object, error: RoleError) -> None:
    """A role change asked from the page failed in the worker: say so in the history."""
    what = ACTION_NAMES[action]
    FailoverEvent.record(
        FailoverEvent.Kind.ERROR,
        f"{what} did not happen: {error.message}",
        severity=FailoverEvent.Severity.DANGER,
        actor=actor,
    )


# Conflicts -----------------------------------------------------------------------------


def _drained() -> bool:
    try:
        return writes.wait_until_drained(FREEZE_DRAIN_SECONDS)
    except redis.RedisError:
        return False  # cannot tell: do not freeze into a switchover that might lose a write


def accept(
    action: str,
    *,
    epoch: int | None,
    sync_first: bool,
    cursor: dict | None = None,
    log: dict | None = None,
) -> bool:
    """The other site's part of a handover, asked through the peer API. Raises RoleError.

    Returns True when the work was queued for the worker (become_primary, which may
    wait for a final sync), False when it is done.
    """
    state = FailoverState.load()
    asked_by = f"peer {state.peer_name}"
    if action in ("freeze", "thaw"):
        if state.role != Role.PRIMARY:
            raise RoleError(f"This site is {state.role}.", reason="not_primary")
        FailoverState.objects.filter(pk=1).update(switching_over=action == "freeze")
        if action == "freeze" and not _drained():
            FailoverState.objects.filter(pk=1).update(switching_over=False)
            raise RoleError(
                f"Writes were still running on this site after {FREEZE_DRAIN_SECONDS} s; "
                "it takes changes again. Try the switchover once they are done.",
                reason="writes_in_flight",
            )
        return False
    if action in ("step_down", "yield"):
        if state.role == Role.BACKUP and epoch == state.epoch:
            return False  # already done (a retried request): say so rather than refuse
        if epoch is None or epoch <= state.epoch:
            raise RoleError(
                f"Epoch {epoch} is not newer than this site's {state.epoch}.",
                reason="stale_epoch",
            )
        if cursor:
            replication.note_ack(cursor.get("generation"), cursor.get("seq"))
        if action == "yield":
            # Fix This Error: the losing side keeps its data in an export first.
            exports.export_data(f"{state.peer_name} won the role conflict")
        roles.demote(
            epoch,
            f"{state.peer_name} is taking over.",
            asked_by,
            follow_from=log if action == "step_down" else None,
        )
        return False
    if state.role != Role.BACKUP:
        raise RoleError(f"This site is {state.role}.", reason="not_backup")
    start("become_primary", asked_by, sync_first)
    return True
