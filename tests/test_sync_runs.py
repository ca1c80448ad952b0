"""SyncRun's transitions (one sync at a time, claimed once, closed once) and the throttle."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from failover.models import SyncRun
from failover.sync import progress, runs
from failover.sync.throttle import Throttle

WORKER_STOPPED = "The worker stopped during this sync; the backup's data was left as it was."
Status = SyncRun.Status


def started(seconds_ago: float) -> SyncRun:
    """A run claimed by a worker `seconds_ago` seconds ago."""
    run, _ = SyncRun.request(SyncRun.Trigger.SCHEDULE)
    assert run.claim()
    began = timezone.now() - dt.timedelta(seconds=seconds_ago)
    SyncRun.objects.filter(pk=run.pk).update(started_at=began)
    run.refresh_from_db()
    return run


# SyncRun.request: one sync at a time


@pytest.mark.django_db
def test_a_request_creates_a_pending_run():
    run, created = SyncRun.request(SyncRun.Trigger.MANUAL, full=True, by="admin")
    assert created
    run.refresh_from_db()
    assert (run.status, run.trigger, run.requested_by) == (Status.PENDING, "manual", "admin")
    assert run.full_requested
    assert (run.started_at, run.finished_at, run.attempts) == (None, None, 0)


@pytest.mark.django_db
def test_a_second_request_returns_the_pending_run_unchanged():
    first, _ = SyncRun.request(SyncRun.Trigger.SCHEDULE)
    second, created = SyncRun.request(SyncRun.Trigger.MANUAL, full=True, by="admin")
    assert not created
    assert second.pk == first.pk
    second.refresh_from_db()
    assert (second.trigger, second.full_requested, second.requested_by) == (
        "schedule",
        False,
        "system",
    )
    assert SyncRun.objects.count() == 1


@pytest.mark.django_db
def test_a_request_returns_a_run_that_is_running():
    running = started(seconds_ago=1)
    progress.touch(running.pk)  # its worker's pulse, where Redis runs
    run, created = SyncRun.request(SyncRun.Trigger.MANUAL)
    assert not created
    assert run.pk == running.pk


@pytest.mark.django_db
def test_a_request_after_the_last_run_finished_creates_a_new_one():
    first, _ = SyncRun.request(SyncRun.Trigger.SCHEDULE)
    assert first.finish(Status.SUCCEEDED)
    second, created = SyncRun.request(SyncRun.Trigger.MANUAL)
    assert created
    assert second.pk != first.pk


# claim, release, finish


@pytest.mark.django_db
def test_a_run_is_claimed_only_once_even_by_two_deliveries():
    run, _ = SyncRun.request(SyncRun.Trigger.MANUAL)
    delivery_a = SyncRun.objects.get(pk=run.pk)
    delivery_b = SyncRun.objects.get(pk=run.pk)
    assert delivery_a.claim()
    assert not delivery_b.claim()
    assert not delivery_a.claim()
    run.refresh_from_db()
    assert run.status == Status.RUNNING
    assert run.attempts == 1
    assert run.started_at is not None
    assert delivery_a.status == Status.RUNNING


@pytest.mark.django_db
def test_a_finished_run_cannot_be_claimed():
    run, _ = SyncRun.request(SyncRun.Trigger.MANUAL)
    run.finish(Status.FAILED, "The peer refused.")
    assert not run.claim()
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 0)


@pytest.mark.django_db
def test_a_released_run_keeps_its_error_and_can_be_claimed_again():
    run = started(seconds_ago=1)
    run.release("Attempt 1 failed: the peer timed out.", retry_in=5)
    run.refresh_from_db()
    assert (run.status, run.error) == (Status.PENDING, "Attempt 1 failed: the peer timed out.")
    assert run.claim()
    assert run.attempts == 2


@pytest.mark.django_db
def test_finish_closes_an_open_run_with_its_totals():
    run = started(seconds_ago=3)
    assert run.finish(Status.SUCCEEDED, records=10, bytes=2048, files=1)
    run.refresh_from_db()
    assert (run.status, run.error, run.records, run.bytes, run.files) == (
        Status.SUCCEEDED,
        "",
        10,
        2048,
        1,
    )
    assert run.finished_at is not None
    assert not run.is_active


@pytest.mark.django_db
def test_finish_closes_a_pending_run():
    run, _ = SyncRun.request(SyncRun.Trigger.MANUAL)
    assert run.finish(Status.FAILED, "This site is none, not a backup.")
    run.refresh_from_db()
    assert (run.status, run.error) == (Status.FAILED, "This site is none, not a backup.")


@pytest.mark.django_db
def test_finish_leaves_a_closed_run_as_it_was():
    run = started(seconds_ago=3)
    assert run.finish(Status.FAILED, WORKER_STOPPED)
    finished_at = run.finished_at
    late = SyncRun.objects.get(pk=run.pk)
    late.status = Status.RUNNING  # what the slow worker still believes
    assert not late.finish(Status.SUCCEEDED, records=99)
    assert late.records == 0
    run.refresh_from_db()
    assert (run.status, run.error, run.records) == (Status.FAILED, WORKER_STOPPED, 0)
    assert run.finished_at == finished_at


# A worker that died


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_running_run_without_a_pulse_is_closed_and_replaced():
    dead = started(seconds_ago=progress.PULSE_SECONDS + 5)
    assert dead.is_stale()
    run, created = SyncRun.request(SyncRun.Trigger.MANUAL, by="admin")
    assert created
    assert run.pk != dead.pk
    assert run.status == Status.PENDING
    dead.refresh_from_db()
    assert (dead.status, dead.error) == (Status.FAILED, WORKER_STOPPED)
    assert dead.finished_at is not None


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_running_run_with_a_pulse_is_alive_however_long_it_runs():
    alive = started(seconds_ago=3600)
    progress.Progress(alive.pk).set_phase("applying")
    assert not alive.is_stale()
    run, created = SyncRun.request(SyncRun.Trigger.MANUAL)
    assert not created
    assert run.pk == alive.pk
    alive.refresh_from_db()
    assert alive.status == Status.RUNNING


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_run_has_its_pulse_before_anyone_can_see_it_running(monkeypatch):
    run, _ = SyncRun.request(SyncRun.Trigger.MANUAL)
    seen: list[object] = []
    claim = SyncRun.claim

    def watched_claim(self: SyncRun) -> bool:
        seen.append(("pulse before the claim", progress.is_alive(self.pk)))
        return claim(self)

    def carried_out(claimed: SyncRun) -> runs.Outcome:
        seen.append(("stale while running", claimed.is_stale()))
        return runs.Outcome.DONE

    monkeypatch.setattr(SyncRun, "claim", watched_claim)
    monkeypatch.setattr(runs, "_run_claimed", carried_out)
    runs.execute(run.pk)
    assert seen == [("pulse before the claim", True), ("stale while running", False)]
    assert progress.is_alive(run.pk) is False, "the pulse ends with the run"


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_run_is_stale_as_soon_as_its_pulse_lapses_however_young():
    young = started(seconds_ago=1)
    progress.touch(young.pk)
    assert not young.is_stale()
    progress.forget(young.pk)
    assert young.is_stale()


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_pulse_of_another_run_does_not_keep_a_dead_one_alive():
    dead = started(seconds_ago=progress.PULSE_SECONDS + 5)
    progress.Progress(dead.pk + 1000).set_phase("downloading")
    assert dead.is_stale()


class FakeTask:
    """Stands in for failover.jobs.run_sync: records what was queued, or fails to queue."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.queued: list[int] = []

    def delay(self, run_id: int) -> None:
        if self.error is not None:
            raise self.error
        self.queued.append(run_id)


@pytest.mark.django_db
def test_request_sync_queues_the_new_run_once_committed(
    monkeypatch, django_capture_on_commit_callbacks
):
    task = FakeTask()
    monkeypatch.setattr("failover.jobs.run_sync", task.delay)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run, created = runs.request_sync(SyncRun.Trigger.MANUAL)
        again, created_again = runs.request_sync(SyncRun.Trigger.SCHEDULE)
    assert (created, created_again) == (True, False)
    assert again.pk == run.pk
    assert task.queued == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert task.queued == [run.pk]


@pytest.mark.django_db
def test_a_run_whose_task_cannot_be_queued_is_closed_saying_why(
    monkeypatch, django_capture_on_commit_callbacks
):
    broker_down = OperationalError("Error 111 connecting to the broker. Connection refused.")
    monkeypatch.setattr("failover.jobs.run_sync", FakeTask(broker_down).delay)
    with django_capture_on_commit_callbacks(execute=True):
        lost, _ = runs.request_sync(SyncRun.Trigger.MANUAL)
    lost.refresh_from_db()
    assert lost.status == SyncRun.Status.FAILED
    assert "could not be queued" in lost.error

    monkeypatch.setattr("failover.jobs.run_sync", FakeTask().delay)
    run, created = runs.request_sync(SyncRun.Trigger.SCHEDULE)
    assert created
    assert run.pk != lost.pk


def waiting_to_retry(seconds: float) -> SyncRun:
    """A run whose first attempt failed, due to be retried in `seconds`."""
    run, _ = SyncRun.request(SyncRun.Trigger.SCHEDULE)
    assert run.claim()
    run.release("Attempt 1 failed: the peer did not answer.", retry_in=seconds)
    return run


@pytest.mark.django_db
@pytest.mark.parametrize("trigger", [SyncRun.Trigger.MANUAL, SyncRun.Trigger.CLI])
def test_sync_now_while_a_sync_waits_to_retry_tries_it_again_at_once(
    monkeypatch, django_capture_on_commit_callbacks, trigger
):
    task = FakeTask()
    monkeypatch.setattr("failover.jobs.run_sync", task.delay)
    waiting = waiting_to_retry(600)
    with django_capture_on_commit_callbacks(execute=True):
        run, created = runs.request_sync(trigger, by="admin")
    assert (run.pk, created) == (waiting.pk, False)
    assert task.queued == [waiting.pk]
    run.refresh_from_db()
    assert run.status == Status.PENDING
    assert run.retry_at <= timezone.now()
    assert runs.describe_request(run, created) == (
        f"Sync #{run.pk} was waiting to retry after attempt 1 failed; it is tried again now."
    )


@pytest.mark.django_db
def test_a_scheduled_tick_leaves_a_waiting_retry_to_its_own_time(
    monkeypatch, django_capture_on_commit_callbacks
):
    task = FakeTask()
    monkeypatch.setattr("failover.jobs.run_sync", task.delay)
    waiting = waiting_to_retry(600)
    due = SyncRun.objects.get(pk=waiting.pk).retry_at
    with django_capture_on_commit_callbacks(execute=True):
        run, created = runs.request_sync(SyncRun.Trigger.SCHEDULE)
    assert (run.pk, created, task.queued) == (waiting.pk, False, [])
    assert SyncRun.objects.get(pk=waiting.pk).retry_at == due


@pytest.mark.django_db
def test_sync_now_does_not_queue_a_running_sync_again(
    monkeypatch, django_capture_on_commit_callbacks
):
    task = FakeTask()
    monkeypatch.setattr("failover.jobs.run_sync", task.delay)
    running = started(seconds_ago=1)
    progress.touch(running.pk)  # its worker's pulse, where Redis runs
    with django_capture_on_commit_callbacks(execute=True):
        run, created = runs.request_sync(SyncRun.Trigger.MANUAL)
    assert (run.pk, created, task.queued) == (running.pk, False, [])


@pytest.mark.django_db
def test_a_pending_run_never_picked_up_does_not_block_syncs_forever(monkeypatch):
    monkeypatch.setattr("failover.jobs.run_sync", FakeTask().delay)
    lost, _ = SyncRun.request(SyncRun.Trigger.MANUAL)
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    SyncRun.objects.filter(pk=lost.pk).update(created_at=an_hour_ago)

    run, created = runs.request_sync(SyncRun.Trigger.SCHEDULE)
    assert created
    assert run.pk != lost.pk
    lost.refresh_from_db()
    assert lost.status == SyncRun.Status.FAILED


# The bandwidth limit


class FakeTime:
    """A clock that only moves when the code under test sleeps or the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def throttle(bits_per_second: int | None, time: FakeTime) -> Throttle:
    return Throttle(bits_per_second, clock=time.clock, sleep=time.sleep)


def test_it_holds_the_rate_over_many_chunks():
    time = FakeTime()
    limit = throttle(1_000_000, time)
    assert limit.rate == 125_000
    start = time.now
    for _ in range(200):
        limit.consume(16 * 1024)
    total = 200 * 16 * 1024
    elapsed = time.now - start
    assert elapsed == pytest.approx((total - limit.burst) / limit.rate)
    assert total / elapsed == pytest.approx(125_000, rel=0.01)


def test_no_stretch_of_time_carries_more_than_its_share_plus_one_burst():
    time = FakeTime()
    limit = throttle(2_000_000, time)
    chaos = random.Random(20_251_126)
    total = 0
    # For every earlier moment i: total_now - total_i <= burst + rate * (now - time_i),
    # that is, (total - rate * time) grows by at most one burst over any stretch.
    lowest = -limit.rate * time.now
    for _ in range(2000):
        time.now += chaos.choice([0.0, 0.0, 0.001, 0.05, 0.5, 30.0])  # the reader's own pace
        size = chaos.randint(1, 64 * 1024)
        limit.consume(size)
        total += size
        level = total - limit.rate * time.now
        assert level - lowest <= limit.burst + 1e-6
        lowest = min(lowest, level)


def test_a_reader_slower_than_the_limit_never_sleeps():
    time = FakeTime()
    limit = throttle(1_000_000, time)
    for _ in range(100):
        time.now += 0.2  # 16 KiB every 0.2 s is 82 KB/s, under 125 KB/s
        limit.consume(16 * 1024)
    assert time.sleeps == []


@pytest.mark.parametrize("bits_per_second", [None, 0])
def test_unlimited_never_sleeps(bits_per_second):
    time = FakeTime()
    limit = throttle(bits_per_second, time)
    for _ in range(100):
        limit.consume(10 * 1024 * 1024)
    assert limit.rate is None
    assert time.sleeps == []


def test_a_fresh_throttle_allows_a_burst_of_a_quarter_second():
    time = FakeTime()
    limit = throttle(8_000_000, time)
    assert limit.burst == 250_000
    limit.consume(250_000)
    assert time.sleeps == []
    limit.consume(1000)
    assert time.sleeps == [pytest.approx(0.001)]


def test_a_slow_limit_still_allows_one_16_kib_read():
    time = FakeTime()
    limit = throttle(256_000, time)
    assert limit.burst == 16 * 1024
    limit.consume(16 * 1024)
    assert time.sleeps == []
    limit.consume(16 * 1024)
    assert time.sleeps == [pytest.approx(16 * 1024 / 32_000)]


def test_idle_time_earns_no_more_than_one_burst():
    time = FakeTime()
    limit = throttle(1_000_000, time)
    time.now += 600
    limit.consume(int(limit.burst))
    assert time.sleeps == []
    limit.consume(125_000)
    assert time.sleeps == [pytest.approx(1.0)]


def released_after_a_failed_attempt(monkeypatch) -> SyncRun:
    """A run whose first attempt failed, waiting to retry in 5 s."""
    monkeypatch.setattr("failover.jobs.run_sync", FakeTask().delay)
    run, _ = SyncRun.request(SyncRun.Trigger.MANUAL)
    assert run.claim()
    run.release("Attempt 1 failed: the link broke.", retry_in=5)
    return run


def make_retry_overdue(run: SyncRun) -> None:
    """Its retry due longer ago than the grace: as if the worker holding it had died."""
    SyncRun.objects.filter(pk=run.pk).update(
        retry_at=timezone.now() - dt.timedelta(seconds=SyncRun.RETRY_GRACE_SECONDS + 1)
    )


@pytest.mark.django_db
def test_a_released_run_whose_retry_is_overdue_is_stale(monkeypatch):
    run = released_after_a_failed_attempt(monkeypatch)
    assert not run.is_stale()
    make_retry_overdue(run)
    run.refresh_from_db()
    assert run.is_stale()
    new, created = runs.request_sync(SyncRun.Trigger.MANUAL)
    assert created
    assert new.pk != run.pk


@pytest.mark.django_db
def test_an_overdue_retry_claimed_meanwhile_by_a_slow_worker_is_not_closed(monkeypatch):
    run = released_after_a_failed_attempt(monkeypatch)
    make_retry_overdue(run)
    judged = SyncRun.objects.get(pk=run.pk)
    assert judged.is_stale()
    # Between that judgement and the close, the late worker takes its retry.
    assert SyncRun.objects.get(pk=run.pk).claim()

    assert not judged.close_as_dead()
    assert (judged.status, judged.attempts) == (Status.RUNNING, 2)
    assert SyncRun.objects.get(pk=run.pk).error == "Attempt 1 failed: the link broke."


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_dead_run_is_closed_once_and_only_as_it_was_judged():
    dead = started(seconds_ago=progress.PULSE_SECONDS + 5)
    assert dead.is_stale()
    assert dead.close_as_dead()
    assert not SyncRun.objects.get(pk=dead.pk).close_as_dead()
    assert SyncRun.objects.get(pk=dead.pk).error == WORKER_STOPPED


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_each_attempt_has_its_pulse_though_the_attempt_before_ended_its_own(monkeypatch):
    run, _ = SyncRun.request(SyncRun.Trigger.MANUAL)
    claim = SyncRun.claim

    def claimed_just_after_the_last_attempt_ended(self: SyncRun) -> bool:
        # The delivery touched the pulse while the previous attempt still held it; that
        # attempt has since released the run and ended its pulse.
        progress.forget(self.pk)
        return claim(self)

    def carried_out(claimed: SyncRun) -> runs.Outcome:
        assert not claimed.is_stale(), "a running attempt without a pulse looks dead"
        return runs.Outcome.DONE

    monkeypatch.setattr(SyncRun, "claim", claimed_just_after_the_last_attempt_ended)
    monkeypatch.setattr(runs, "_run_claimed", carried_out)
    assert runs.execute(run.pk) is runs.Outcome.DONE


@pytest.mark.django_db
def test_a_starting_worker_queues_again_the_retries_a_dead_worker_held(monkeypatch):
    queued = []
    monkeypatch.setattr(
        "failover.jobs.run_sync", lambda run_id, countdown: queued.append((run_id,))
    )
    run, _ = SyncRun.request(SyncRun.Trigger.MANUAL)
    assert run.claim()
    run.release("Attempt 1 failed: the link broke.", retry_in=5)
    SyncRun.request(SyncRun.Trigger.MANUAL)  # the same run: nothing new
    assert runs.requeue_released() == 1
    assert queued == [(run.pk,)]
