"""The backup's monitor: where the backup decides to fail over (the seed's rule).

1. Poll the primary at the poll interval. A poll is a signed call to the
   primary's service (web, database and key), not a ping of its host.
2. After a failed poll, keep polling for the Primary Site Instance Timeout.
3. Then test the Network Connectivity Test IPs.
4. None reachable: the backup's own network is at fault; stay backup.
   One or more reachable: the primary is down; become primary and take the IP.
   (After an isolation, a reachable test IP first means the backup's network is
   back: the primary gets a whole timeout to answer again before a takeover.)

`decide` is the rule itself, pure and clocked from outside, so every branch is
tested directly; `poll` gathers the facts and acts on the decision. A Redis
lock makes sure exactly one decision runs at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import redis
from django.utils import timezone

from appliance.broker import connection
from failover import peer, replication, roles, takeover
from failover.models import BackupSettings, FailoverEvent, FailoverState, Role
from failover.peer import HELLO, PeerError
from failover.system import probe

logger = logging.getLogger(__name__)

LOCK = "appliance-failover:monitor-lock"
# Poll failures that mean the primary's service is not there. Any other answer
# (a refused signature, a skewed clock, another key, a changed certificate) comes
# from a live primary, and a backup that took over from it would make two.
DOWN_REASONS = frozenset({"unreachable", "timeout", "server_error", "tls", "bad_response"})


class Action(Enum):
    HEALTHY = "healthy"  # the primary answered
    START_TIMER = "start_timer"  # first failed poll: the timeout starts now
    KEEP_POLLING = "keep_polling"  # failing, but the timeout has not run out
    STAY_ISOLATED = "stay_isolated"  # timed out, and no test IP answered: our network is down
    TAKE_OVER = "take_over"  # timed out, and a test IP answered: the primary is down
    NETWORK_BACK = "network_back"  # isolated before, a test IP answers now: the timer restarts


@dataclass(frozen=True)
class Decision:
    action: Action
    failing_since: dt.datetime | None
    reason: str


def decide(
    *,
    now: dt.datetime,
    poll_ok: bool,
    poll_error: str,
    failing_since: dt.datetime | None,
    timeout: dt.timedelta,
    test_connectivity: Callable[[], list[probe.Result]],
    poll_started: dt.datetime | None = None,
    isolated: bool = False,
) -> Decision:
    """The seed's rule. `test_connectivity` is called only when the timeout has run out.

    The timeout runs from the start of the first failed poll (`poll_started`):
    the primary has not answered since then, however long the poll waited.
    `isolated`: the last network test of this episode reached no test IP.
    """
    if poll_ok:
        return Decision(Action.HEALTHY, None, "The primary answered.")
    if failing_since is None:
        return Decision(
            Action.START_TIMER, poll_started or now, f"The primary did not answer: {poll_error}"
        )
    waited = now - failing_since
    if waited < timeout:
        left = int((timeout - waited).total_seconds())
        return Decision(
            Action.KEEP_POLLING,
            failing_since,
            f"The primary has not answered for {int(waited.total_seconds())} s; "
            f"{left} s left before the network test.",
        )
    results = test_connectivity()
    reached = [str(r.target) for r in results if r.reachable]
    if not reached:
        tried = ", ".join(f"{r.target} ({r.detail})" for r in results) or "no test IPs configured"
        return Decision(
            Action.STAY_ISOLATED,
            # The timer starts again: what the backup saw while its own network was
            # down says nothing about the primary. Once its network is back, the
            # primary must fail a whole timeout of polls again before a takeover.
            now,
            "The primary has not answered for "
            f"{int(waited.total_seconds())} s, but none of the connectivity test IPs answered "
            f"either ({tried}): this backup's own network is at fault, so it does not fail over.",
        )
    if isolated:
        # The backup's own network has just come back. Its polls failed while it was
        # down, and the one in flight when it returned may have failed too: none of
        # that says the primary is down. It gets a whole timeout to answer again.
        return Decision(
            Action.NETWORK_BACK,
            now,
            f"This backup's network answers again (reached {', '.join(reached)}); the primary "
            "gets a whole timeout to answer before a takeover.",
        )
    return Decision(
        Action.TAKE_OVER,
        failing_since,
        f"The primary has not answered for {int(waited.total_seconds())} s ({poll_error}) and "
        f"the network test reached {', '.join(reached)}: the primary is down.",
    )


def test_targets(settings_: BackupSettings) -> list[probe.Target]:
    return [probe.Target.parse(line) for line in settings_.connectivity_test_ips.split() if line]


def poll() -> Decision | None:
    """One tick of the monitor on a backup with automatic failover; None when it does not apply."""
    settings_ = BackupSettings.load()
    if not (settings_.enable_backup_operations and settings_.automatic_failover):
        return None
    try:
        lock = connection().lock(LOCK, timeout=120, blocking=False)
        if not lock.acquire():
            return None
    except redis.RedisError:
        return None
    try:
        return _poll_locked(settings_)
    finally:
        try:
            lock.release()
        except redis.RedisError:
            logger.warning("monitor lock was lost before release")


def _poll_locked(settings_: BackupSettings) -> Decision | None:
    state = FailoverState.load()
    if state.role != Role.BACKUP:
        return None
    poll_ok, poll_error = True, ""
    # The primary has not answered since this poll began, not since it gave up.
    started = timezone.now()
    try:
        with peer.client_for_state(state, timeout=settings_.poll_timeout()) as client:
            hello = client.get(HELLO)
    except PeerError as error:
        if error.reason in DOWN_REASONS:
            poll_ok, poll_error = False, error.message
        else:
            # The primary's service answered: it is alive, whatever it said. Failing
            # over now would make two primaries; tell the administrator instead.
            _record_once(
                FailoverEvent.Kind.AUTH_REFUSED,
                f"The primary answers but this backup cannot use the answer: {error.message} "
                "It counts as alive, so automatic failover waits until this is fixed.",
            )
    else:
        if hello.get("role") == Role.BACKUP and int(hello.get("epoch", 0)) >= state.epoch:
            # Both backups: no one serves. The higher epoch or the operator resolves it.
            poll_ok, poll_error = True, ""
    now = timezone.now()
    decision = decide(
        now=now,
        poll_ok=poll_ok,
        poll_error=poll_error,
        failing_since=state.primary_failing_since,
        poll_started=started,
        isolated=state.backup_isolated,
        timeout=dt.timedelta(seconds=settings_.primary_timeout_seconds),
        test_connectivity=lambda: probe.probe(test_targets(settings_)),
    )
    FailoverState.objects.filter(pk=1, epoch=state.epoch).update(
        primary_failing_since=decision.failing_since,
        last_poll_at=now,
        backup_isolated=decision.action is Action.STAY_ISOLATED
        or (state.backup_isolated and decision.action in (Action.START_TIMER, Action.KEEP_POLLING)),
    )
    if decision.action is Action.START_TIMER:
        FailoverEvent.record(
            FailoverEvent.Kind.PRIMARY_DOWN,
            decision.reason,
            severity=FailoverEvent.Severity.WARNING,
        )
    elif decision.action is Action.HEALTHY and state.primary_failing_since is not None:
        FailoverEvent.record(FailoverEvent.Kind.PEER_REACHABLE, "The primary answers again.")
    elif decision.action is Action.STAY_ISOLATED:
        _record_once(FailoverEvent.Kind.ISOLATED, decision.reason)
    elif decision.action is Action.NETWORK_BACK:
        FailoverEvent.record(FailoverEvent.Kind.NETWORK_BACK, decision.reason)
    elif decision.action is Action.TAKE_OVER:
        # The poll has just found the primary unreachable: the claim need not ask it again.
        roles.promote(
            f"{decision.reason} {replication.describe_lag_at_takeover()}",
            "monitor",
            kind=FailoverEvent.Kind.FAILOVER,
            peer_checked=True,
        )
        # This task runs on the network worker: take the address (and swing the DNS
        # name, and run the hooks) now, not after the queue's next follow-up, which
        # would ask the unreachable primary again.
        takeover.follow(peer_checked=True)
    return decision


def _record_once(kind: str, message: str) -> None:
    """One event per episode: the last event of the kind is not repeated while it lasts."""
    ends = [FailoverEvent.Kind.PEER_REACHABLE, FailoverEvent.Kind.NETWORK_BACK]
    last = FailoverEvent.objects.filter(kind__in=[kind, *ends]).first()
    if last is None or last.kind != kind:
        FailoverEvent.record(kind, message, severity=FailoverEvent.Severity.DANGER)
