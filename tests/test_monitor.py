"""The backup's failover rule, every branch, with a controlled clock."""

import datetime as dt

import pytest

from failover.monitor import Action, decide
from failover.system.probe import Result, Target

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
TIMEOUT = dt.timedelta(seconds=300)


def results(*reachable: bool) -> list[Result]:
    return [
        Result(Target(f"198.51.100.{i}"), ok, 1.0 if ok else None, "ok" if ok else "no reply")
        for i, ok in enumerate(reachable, start=1)
    ]


def never_called():
    raise AssertionError("the network must not be tested before the timeout")


def rule(*, poll_ok=False, failing_since=None, connectivity=never_called, now=NOW, isolated=False):
    return decide(
        now=now,
        isolated=isolated,
        poll_ok=poll_ok,
        poll_error="connection refused",
        failing_since=failing_since,
        timeout=TIMEOUT,
        test_connectivity=connectivity,
    )


def test_a_primary_that_answers_is_healthy_and_clears_the_timer():
    decision = rule(poll_ok=True, failing_since=NOW - dt.timedelta(seconds=100))
    assert decision.action is Action.HEALTHY
    assert decision.failing_since is None


def test_the_first_failed_poll_starts_the_timer_without_testing_the_network():
    decision = rule()
    assert decision.action is Action.START_TIMER
    assert decision.failing_since == NOW
    assert "connection refused" in decision.reason


def test_failed_polls_within_the_timeout_keep_polling():
    decision = rule(failing_since=NOW - dt.timedelta(seconds=299))
    assert decision.action is Action.KEEP_POLLING
    assert decision.failing_since == NOW - dt.timedelta(seconds=299)
    assert "1 s left" in decision.reason


def test_at_the_timeout_an_isolated_backup_does_not_fail_over():
    decision = rule(failing_since=NOW - TIMEOUT, connectivity=lambda: results(False, False))
    assert decision.action is Action.STAY_ISOLATED
    assert "own network is at fault" in decision.reason
    assert "198.51.100.1 (no reply)" in decision.reason


def test_after_isolation_the_timer_starts_again_so_a_returning_network_does_not_fail_over():
    isolated = rule(failing_since=NOW - TIMEOUT, connectivity=lambda: results(False))
    assert isolated.failing_since == NOW
    # The backup's link comes back: its first poll still fails (ARP, TCP retry)
    # while a test IP already answers. That is no reason to take over.
    back = rule(
        failing_since=isolated.failing_since,
        now=NOW + dt.timedelta(seconds=2),
        connectivity=lambda: results(True),
    )
    assert back.action is Action.KEEP_POLLING


def test_a_network_that_returns_as_the_timer_runs_out_again_restarts_it_rather_than_take_over():
    # Isolated, and the link returns just before the timer runs out again: the poll in
    # flight fails, the network test that follows already reaches a test IP.
    back = rule(
        failing_since=NOW - TIMEOUT,
        isolated=True,
        connectivity=lambda: results(False, True),
    )
    assert back.action is Action.NETWORK_BACK
    assert back.failing_since == NOW
    assert "198.51.100.2" in back.reason and "whole timeout" in back.reason
    # The primary still does not answer for a whole timeout with the network up: now it is down.
    later = rule(
        failing_since=back.failing_since,
        now=NOW + TIMEOUT,
        connectivity=lambda: results(True),
    )
    assert later.action is Action.TAKE_OVER


def test_with_no_test_ips_configured_the_backup_does_not_fail_over():
    decision = rule(failing_since=NOW - TIMEOUT, connectivity=list)
    assert decision.action is Action.STAY_ISOLATED
    assert "no test IPs configured" in decision.reason


@pytest.mark.parametrize("reachable", [(True,), (False, True), (True, True, False)])
def test_at_the_timeout_one_reachable_test_ip_is_enough_to_take_over(reachable):
    decision = rule(
        failing_since=NOW - TIMEOUT - dt.timedelta(seconds=5),
        connectivity=lambda: results(*reachable),
    )
    assert decision.action is Action.TAKE_OVER
    assert "the primary is down" in decision.reason


def test_a_primary_that_answers_again_after_isolation_is_healthy():
    assert rule(poll_ok=True, failing_since=NOW - dt.timedelta(hours=2)).action is Action.HEALTHY


def test_the_timer_runs_from_the_start_of_the_first_failed_poll():
    started = NOW - dt.timedelta(seconds=1)
    decision = decide(
        now=NOW,
        poll_ok=False,
        poll_error="timed out after 1 s",
        failing_since=None,
        timeout=TIMEOUT,
        test_connectivity=never_called,
        poll_started=started,
    )
    assert decision.action is Action.START_TIMER
    assert decision.failing_since == started


# One tick of the monitor: what counts as a failed poll --------------------------------


class RefusingPeer:
    def __init__(self, error):
        self.error = error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get(self, _path):
        raise self.error


@pytest.fixture
def monitored_backup(db, monkeypatch):

    from failover.models import BackupSettings, FailoverState, Role

    state = FailoverState.load()
    state.role, state.epoch = Role.BACKUP, 3
    state.peer_name, state.peer_host, state.peer_port = "site-a", "192.0.2.1", 443
    state.save()
    settings_ = BackupSettings.load()
    settings_.automatic_failover, settings_.primary_timeout_seconds = True, 5
    settings_.connectivity_test_ips = "192.0.2.9"
    settings_.save()

    def answer_with(error):
        monkeypatch.setattr("failover.peer.client_for_state", lambda *a, **k: RefusingPeer(error))

    return answer_with


@pytest.mark.parametrize(
    "reason", ["clock_skew", "key_mismatch", "signature_refused", "certificate_changed"]
)
def test_a_primary_that_answers_but_refuses_the_poll_is_alive(monitored_backup, reason):
    from failover.models import BackupSettings, FailoverEvent, FailoverState
    from failover.monitor import _poll_locked
    from failover.peer import PeerError

    monitored_backup(PeerError("The answer was refused.", transient=False, reason=reason))
    FailoverState.objects.filter(pk=1).update(
        primary_failing_since=NOW - dt.timedelta(hours=1)
    )  # even long after a real outage began
    decision = _poll_locked(BackupSettings.load())
    assert decision.action is Action.HEALTHY
    assert FailoverState.load().role == "backup"
    assert FailoverEvent.objects.filter(kind="auth_refused").count() == 1


@pytest.mark.parametrize("reason", ["unreachable", "timeout", "server_error"])
def test_a_primary_that_does_not_answer_starts_the_timer(monitored_backup, reason):
    from failover.models import BackupSettings, FailoverState
    from failover.monitor import _poll_locked
    from failover.peer import PeerError

    monitored_backup(PeerError("Could not reach it.", transient=True, reason=reason))
    decision = _poll_locked(BackupSettings.load())
    assert decision.action is Action.START_TIMER
    assert FailoverState.load().primary_failing_since is not None


def test_the_monitor_remembers_an_isolation_until_the_network_answers_again(
    monitored_backup, monkeypatch
):
    from django.utils import timezone

    from failover import monitor
    from failover.models import BackupSettings, FailoverEvent, FailoverState
    from failover.peer import PeerError

    monitored_backup(PeerError("Could not reach it.", transient=True, reason="unreachable"))
    reachable = []
    monkeypatch.setattr(monitor.probe, "probe", lambda targets: results(*reachable))

    def tick(after):
        FailoverState.objects.filter(pk=1).update(
            primary_failing_since=timezone.now() - dt.timedelta(seconds=after)
        )
        return monitor._poll_locked(BackupSettings.load()).action

    reachable[:] = [False]
    assert tick(after=60) is Action.STAY_ISOLATED
    assert FailoverState.load().backup_isolated
    assert tick(after=1) is Action.KEEP_POLLING
    assert FailoverState.load().backup_isolated, "a poll within the timeout ends no isolation"
    reachable[:] = [True]
    assert tick(after=60) is Action.NETWORK_BACK
    state = FailoverState.load()
    assert state.role == "backup" and not state.backup_isolated
    assert FailoverEvent.objects.first().kind == "network_back"
    assert tick(after=60) is Action.TAKE_OVER
