"""Faults during a data sync between two real sites: each leaves the backup exactly as it was.

The sites run for real (web, Celery worker and beat on their own Redis) over plain
HTTP, and the backup reaches the primary through a FaultyProxy in this process, so a
test can damage the change stream or cut the link at a chosen byte. A worker is
killed with SIGKILL, as the kernel or an operator would, and its site's supervisor
restarts it. After every fault the backup's synced rows and recording files must
be unchanged, and the next sync must bring it level with the primary.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from failover.sync import progress, runs
from tests.proxy import FaultyProxy
from tests.sites import Site, wait_until
from tests.syncing import (
    assert_in_step,
    assert_unchanged,
    bandwidth_limit,
    finished,
    frozen_pulse,
    kill_worker,
    live_progress,
    request_sync,
    retry_until_finished,
    snapshot,
    step_worker_until,
    stopped_worker,
    wait_for_run,
    wait_until_dead_run_is_recognised,
    waiting_to_retry,
)

pytestmark = pytest.mark.processes
KEY = "sync faults test shared key 01"
CHANGES = "/api/peer/v1/sync/changes"
FILE = "/api/peer/v1/sync/file"
REPORTS = 4000
# More reports, on the primary only, so that applying a full sync takes several batches
# (the test must catch it between two of them).
APPLY_BALLAST = 10_000
_seeds = itertools.count(100)


@dataclass(frozen=True)
class Pair:
    primary: Site
    backup: Site
    proxy: FaultyProxy


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("sync-faults")
    # Plain HTTP (no ca=): the proxy must see the bytes it damages.
    primary, backup = Site("primary", base), Site("backup", base)
    primary.prepare(key=KEY)
    # Only the tests start syncs: no scheduled one may wander into a fault.
    backup.prepare(
        key=KEY,
        python=(
            "from failover.models import BackupSettings\n"
            "s = BackupSettings.load(); s.enable_backup_operations = False; s.save()"
        ),
    )
    primary.generate_reports(REPORTS, "--seed", "11", "--with-recordings", "4")
    with FaultyProxy(primary.port) as proxy:
        try:
            for site in (primary, backup):
                site.start()
            primary.manage(
                "failover", "establish",
                "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
                "--reverse-host", "127.0.0.1", "--reverse-port", str(proxy.port),
            )  # fmt: skip
            first = wait_until(backup.latest_run, timeout=60)
            assert first, "the backup started no sync after Establish"
            first = wait_for_run(backup, first["id"], finished)
            assert first["status"] == "succeeded", first["error"]
            yield Pair(primary, backup, proxy)
        finally:
            for site in (primary, backup):
                site.destroy()


@pytest.fixture(autouse=True)
def no_faults_afterwards(pair: Pair) -> Iterator[None]:
    yield
    pair.proxy.clear()


def change_the_primary(primary: Site) -> None:
    """Creates (two with recordings), an update, a delete and a new user on the primary."""
    seed = next(_seeds)
    primary.shell(
        "from django.core.management import call_command\n"
        f"call_command('generate_reports', '30', '--seed', '{seed}', '--with-recordings', '2')\n"
        "from django.contrib.auth.models import User\n"
        "from appliance.models import Report\n"
        "first, second = Report.objects.order_by('id')[:2]\n"
        f"first.outcome = 'escalated'; first.customer_name = 'changed {seed}'; first.save()\n"
        "second.delete()\n"
        f"User.objects.create_user('user{seed}', 'u{seed}@example.com', 'long password {seed}')\n"
    )


def add_ballast(primary: Site, count: int) -> int:
    """`count` more reports on the primary; returns the last key before them."""
    before = primary.rows("SELECT MAX(id) FROM appliance_report")[0][0]
    primary.generate_reports(count, "--seed", str(next(_seeds)))
    return int(before)


def failed_attempt(site: Site, run_id: int, attempt: int, message: str) -> re.Match | None:
    """The worker's log line for a failed attempt of the run, whose reason matches `message`."""
    return re.search(
        rf"Sync #{run_id}: attempt {attempt} of {runs.MAX_ATTEMPTS} failed, retrying in \d+ s: "
        + message,
        site.log("worker.log", whole=True),
    )


DAMAGED = (
    r"The change stream from the primary arrived damaged \(.+\); nothing was applied\. "
    "The sync will be retried."
)
BROKE_OFF = r"The stream from the peer at 127\.0\.0\.1:\d+ \(POST .+\) broke off"


# A damaged or cut stream ----------------------------------------------------------------

STREAMS = [
    pytest.param(CHANGES, 2000, id="change-stream"),
    pytest.param(FILE, 10, id="recording-file"),
]


@pytest.mark.parametrize(("into", "after"), STREAMS)
def test_a_stream_corrupted_in_transit_is_refused_and_the_retry_completes(pair, into, after):
    primary, backup, proxy = pair.primary, pair.backup, pair.proxy
    change_the_primary(primary)
    proxy.inject("corrupt", into=into, after=after, times=1)

    run_id = request_sync(backup)
    run = wait_for_run(backup, run_id, finished)

    assert run["status"] == "succeeded", run["error"]
    assert (run["attempts"], proxy.injected) == (2, 1)
    assert failed_attempt(backup, run_id, 1, DAMAGED), backup.log("worker.log")
    assert_in_step(primary, backup)


def test_a_stream_corrupted_on_every_attempt_fails_after_the_last_attempt(pair):
    primary, backup, proxy = pair.primary, pair.backup, pair.proxy
    change_the_primary(primary)
    before = snapshot(backup)
    proxy.inject("corrupt", into=CHANGES, after=2000)

    run = retry_until_finished(backup, request_sync(backup))

    assert run["status"] == "failed"
    assert run["attempts"] == runs.MAX_ATTEMPTS
    assert "arrived damaged" in run["error"]
    assert proxy.injected == runs.MAX_ATTEMPTS
    assert_unchanged(backup, before)
    proxy.clear()
    next_run = wait_for_run(backup, request_sync(backup), finished)
    assert next_run["status"] == "succeeded", next_run["error"]
    assert_in_step(primary, backup)


@pytest.mark.parametrize(("into", "after"), STREAMS)
def test_a_link_cut_mid_stream_leaves_the_backup_unchanged_and_the_retry_completes(
    pair, into, after
):
    primary, backup, proxy = pair.primary, pair.backup, pair.proxy
    change_the_primary(primary)
    before = snapshot(backup)
    proxy.inject("cut", into=into, after=after)

    run_id = request_sync(backup)
    broken = wait_for_run(backup, run_id, lambda run: waiting_to_retry(run) or finished(run))

    assert re.match(rf"(Attempt \d+ failed: )?{BROKE_OFF}", broken["error"]), broken["error"]
    assert proxy.injected >= 1
    # The link stays cut until the backup has been compared: no attempt can get through.
    assert_unchanged(backup, before)
    proxy.clear()
    run = next_sync_completes(backup, run_id)
    assert_in_step(primary, backup)
    assert run["id"] == run_id or proxy.injected == runs.MAX_ATTEMPTS


def next_sync_completes(backup: Site, run_id: int) -> dict:
    """Once a fault is cleared: the run retries to success, or, had it used up its attempts
    while the fault stood (a busy machine runs the test slower than the retries), the next
    sync succeeds. Either way nothing holds the syncs back."""
    run = retry_until_finished(backup, run_id)
    if run["status"] == "failed":
        assert run["attempts"] == runs.MAX_ATTEMPTS, run
        run = wait_for_run(backup, request_sync(backup), finished)
    assert run["status"] == "succeeded", run["error"]
    return run


# A killed worker ----------------------------------------------------------------------


def test_a_worker_killed_while_downloading_leaves_the_backup_unchanged(pair):
    primary, backup = pair.primary, pair.backup
    change_the_primary(primary)
    before = snapshot(backup)

    with bandwidth_limit(backup, 256_000):
        run_id = request_sync(backup, full=True)
        downloading = wait_until(
            lambda: (
                (seen := live_progress(backup, run_id))
                and seen["phase"] == "downloading"
                and seen["bytes"] >= 64 * 1024
            ),
            timeout=120,
            interval=0.05,
        )
        assert downloading, f"sync #{run_id} never got downloading: {backup.sync_run(run_id)}"
        with frozen_pulse(backup, run_id):
            said = backup.manage("failover", "sync-now").stdout
            assert f"Sync #{run_id} is already running" in said, "a live-looking run holds the sync"
            assert_unchanged(backup, before)

    wait_until_dead_run_is_recognised(backup, run_id)
    next_run = wait_for_run(backup, request_sync(backup), finished)
    assert next_run["status"] == "succeeded", next_run["error"]
    killed = backup.sync_run(run_id)
    assert killed["status"] == "failed"
    assert killed["error"].startswith("The worker stopped during this sync")
    assert_in_step(primary, backup)


def test_a_worker_killed_while_applying_leaves_the_backup_unchanged(pair):
    primary, backup = pair.primary, pair.backup
    change_the_primary(primary)
    ballast = add_ballast(primary, APPLY_BALLAST)
    before = snapshot(backup)

    # Part-way: the wipe and at least one batch written in the transaction, not all of
    # them. The worker is frozen before the sync is asked for and let go in short steps,
    # so a slow test cannot miss the moment (on a busy machine the request's own process
    # took longer to exit than the whole sync took to run). Once it applies, it stays
    # frozen for progress's interval between steps, so each step publishes its count.
    with stopped_worker(backup):
        run_id = request_sync(backup, full=True)
        started = step_worker_until(
            backup, run_id, lambda seen: seen["phase"] == "applying", steps=20_000
        )
        assert started, f"sync #{run_id} never started applying: {backup.sync_run(run_id)}"
        applying = step_worker_until(
            backup,
            run_id,
            lambda seen: seen["phase"] == "applying" and 0 < seen["records"] < seen["expected"],
            pause=progress.MIN_INTERVAL,
        )
        assert applying, f"never saw sync #{run_id} part-way through applying"
        with frozen_pulse(backup, run_id):
            assert backup.sync_run(run_id)["status"] == "running", "the kill came after the commit"
            assert_unchanged(backup, before)
            # The primary moves on meanwhile; the next sync starts from the old cursor.
            primary.shell(
                "from appliance.models import Report\n"
                f"Report.objects.filter(pk__gt={ballast}).delete()"
            )

    wait_until_dead_run_is_recognised(backup, run_id)
    next_run = wait_for_run(backup, request_sync(backup), finished)
    assert next_run["status"] == "succeeded", next_run["error"]
    assert next_run["full"] is False
    assert_in_step(primary, backup)


def test_a_worker_killed_while_a_sync_waits_to_retry_does_not_block_the_next_sync(pair):
    primary, backup, proxy = pair.primary, pair.backup, pair.proxy
    change_the_primary(primary)
    before = snapshot(backup)
    # Corrupted until the test says otherwise: every attempt before then fails.
    proxy.inject("corrupt", into=CHANGES, after=2000)
    run_id = request_sync(backup)
    for _ in range(runs.MAX_ATTEMPTS):
        wait_for_run(backup, run_id, lambda run: waiting_to_retry(run) or finished(run))
        # Frozen, the worker cannot start the retry it holds: the run waits while it dies.
        with stopped_worker(backup):
            waiting = backup.sync_run(run_id)
            if waiting_to_retry(waiting):
                kill_worker(backup)
                break
    else:
        pytest.fail(f"sync #{run_id} was never caught waiting to retry: {waiting}")

    assert_unchanged(backup, before)
    proxy.clear()
    # The new worker takes over the retry the dead one held (it may meet the fault again
    # before the check above is done); each retry is made due at once.
    next_sync_completes(backup, run_id)
    assert backup.sync_run(run_id)["attempts"] > waiting["attempts"]
    assert_in_step(primary, backup)
