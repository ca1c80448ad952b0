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


def rule(*, poll_ok=False, failing_since=None, connectivity=never_called, now=NOW):
    return decide(
        now=now,
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
