"""Faults during a data sync between two real sites: each leaves the backup exactly as it was.

The sites run for real (web, Celery worker and beat on their own Redis) over plain
HTTP, and the backup reaches the primary through a FaultyProxy in this process, so a
test can damage the change stream or cut the link at a chosen byte. A worker is
killed with SIGKILL, as the kernel or an operator would, and its site's supervisor
restarts it. After every fault the backup's synced rows and recording files must
be unchanged, and the next sync must bring it level with the primary.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from failover.sync import progress, runs
from tests.proxy import FaultyProxy
from tests.sites import Site, wait_until

pytestmark = pytest.mark.processes
KEY = "sync faults test shared key 01"
SYNCED = ["auth.group", "auth.user", "appliance.sitesettings", "appliance.report"]
CHANGES = "/api/peer/v1/sync/changes"
FILE = "/api/peer/v1/sync/file"
REPORTS = 4000
# More reports, on the primary only, so that applying a full sync lasts a second or two
# (the apply publishes its progress every half second; the test must see it mid-way).
APPLY_BALLAST = 60_000
# The longest the retries of one sync can wait in all: runs.retry_delay with +20 % jitter.
ALL_RETRIES = sum(5 * 2 ** (attempt - 1) * 1.2 for attempt in range(1, runs.MAX_ATTEMPTS))
_seeds = itertools.count(100)


@dataclass(frozen=True)
class Pair:
    primary: Site
    backup: Site
    proxy: FaultyProxy


@dataclass(frozen=True)
class Snapshot:
    rows: list[dict[str, Any]]
    files: dict[str, str]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("sync-faults")
    # Plain HTTP (no ca=): the proxy must see the bytes it damages.
    primary, backup = Site("primary", base), Site("backup", base)
    for site in (primary, backup):
        site.manage("failover", "set-key", stdin=KEY + "\n")
    primary.manage("generate_reports", str(REPORTS), "--seed", "11", "--with-recordings", "4")
    # Only the tests start syncs: no scheduled one may wander into a fault.
    backup.shell(
        "from failover.models import BackupSettings\n"
        "s = BackupSettings.load(); s.enable_backup_operations = False; s.save()"
    )
    with FaultyProxy(primary.port) as proxy:
        try:
            for site in (primary, backup):
                site.start()
            primary.manage(
                "failover", "establish",
                "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
                "--reverse-host", "127.0.0.1", "--reverse-port", str(proxy.port),
            )  # fmt: skip
            first = wait_for_run(backup, latest_run(backup)["id"], finished, timeout=120)
            assert first["status"] == "succeeded", first["error"]
            yield Pair(primary, backup, proxy)
        finally:
            for site in (primary, backup):
                site.destroy()


@pytest.fixture(autouse=True)
def no_faults_afterwards(pair: Pair) -> Iterator[None]:
    yield
    pair.proxy.clear()


# Helpers ------------------------------------------------------------------------------


def change_the_primary(primary: Site) -> None:
    """Creates (two with recordings), an update, a delete and a new user on the primary."""
    seed = next(_seeds)
    primary.manage("generate_reports", "30", "--seed", str(seed), "--with-recordings", "2")
    primary.shell(
        "from django.contrib.auth.models import User\n"
        "from appliance.models import Report\n"
        "first, second = Report.objects.order_by('id')[:2]\n"
        f"first.outcome = 'escalated'; first.customer_name = 'changed {seed}'; first.save()\n"
        "second.delete()\n"
        f"User.objects.create_user('user{seed}', 'u{seed}@example.com', 'long password {seed}')\n"
    )


def add_ballast(primary: Site, count: int) -> int:
    """`count` more reports on the primary; returns the last key before them."""
    before = primary.shell(
        "from django.db.models import Max\nfrom appliance.models import Report\n"
        "print(Report.objects.aggregate(last=Max('pk'))['last'])"
    )
    primary.manage("generate_reports", str(count), "--seed", str(next(_seeds)))
    return int(before.splitlines()[-1])


def snapshot(site: Site) -> Snapshot:
    return Snapshot(site.dump(*SYNCED), media_files(site))


def media_files(site: Site) -> dict[str, str]:
    media = site.data_dir / "media"
    return {
        str(path.relative_to(media)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in Path(media).rglob("*")
        if path.is_file()
    }


def assert_unchanged(site: Site, before: Snapshot) -> None:
    now = snapshot(site)
    assert now.rows == before.rows, differences(now.rows, before.rows)
    assert now.files == before.files


def assert_in_step(primary: Site, backup: Site) -> None:
    on_backup, on_primary = backup.dump(*SYNCED), primary.dump(*SYNCED)
    assert on_backup == on_primary, differences(on_backup, on_primary)
    assert media_files(backup) == media_files(primary)


def differences(rows: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    """The rows that differ, by model and key: a readable message for thousands of rows."""
    have = {(row["model"], row["pk"]): row["fields"] for row in rows}
    want = {(row["model"], row["pk"]): row["fields"] for row in expected}
    lines = [f"missing {key}" for key in want.keys() - have.keys()]
    lines += [f"extra {key}" for key in have.keys() - want.keys()]
    for key in have.keys() & want.keys():
        changed = {
            name: (have[key].get(name), value)
            for name, value in want[key].items()
            if have[key].get(name) != value
        }
        if changed:
            lines.append(f"{key}: {changed}")
    return "\n".join(sorted(lines)[:20])


def request_sync(site: Site, *, full: bool = False) -> int:
    """`failover sync-now` on the backup; the number of the sync it started."""
    said = site.manage("failover", "sync-now", *(["--full"] if full else [])).stdout
    started = re.search(r"ync #(\d+) started", said)
    assert started, f"no new sync started: {said}"
    return int(started.group(1))


def sync_run(site: Site, run_id: int) -> dict[str, Any]:
    """The sync run as the status API shows it."""
    printed = site.shell(
        "import json\nfrom failover.models import SyncRun\n"
        f"print(json.dumps(SyncRun.objects.get(pk={run_id}).as_dict()))"
    )
    # The shell may first say what it imported; the run is the last line.
    return json.loads(printed.splitlines()[-1])


def latest_run(site: Site) -> dict[str, Any]:
    run = wait_until(lambda: site.status()["last_sync"], timeout=30)
    assert run, "the backup has no sync at all"
    return run


def finished(run: dict[str, Any]) -> bool:
    return run["status"] in ("succeeded", "failed")


def wait_for_run(
    site: Site, run_id: int, until: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        run = sync_run(site, run_id)
        return run if until(run) else None

    run = wait_until(reached, timeout)
    assert run, f"sync #{run_id} is still {sync_run(site, run_id)}\n{site.log('worker.log')}"
    return run


def live_progress(site: Site, run_id: int) -> dict[str, Any] | None:
    """The run's live progress, read straight from the site's Redis.

    A `manage.py shell` takes most of a second to start, about as long as the apply
    phase lasts; reading the key directly lets a test act within milliseconds.
    """
    url = site.env.get("REDIS_URL") or f"unix://{site.data_dir / 'redis.sock'}"
    with redis.Redis.from_url(url) as client:
        raw = client.get(progress.KEY.format(run_id=run_id))
    return json.loads(raw) if raw else None


def worker_pid(site: Site) -> int | None:
    """The pid of the site's current Celery worker, as its supervisor logged it."""
    started = re.findall(r"started worker \(pid (\d+)\)", site.log())
    return int(started[-1]) if started else None


def kill_worker(site: Site) -> None:
    """SIGKILL the worker and its pool; wait until the supervisor has started a new one."""
    pid = worker_pid(site)
    assert pid, f"no worker in the site's log:\n{site.log()}"
    os.killpg(pid, signal.SIGKILL)
    assert wait_until(lambda: worker_pid(site) not in (None, pid), timeout=30), site.log()


def wait_until_dead_run_is_recognised(site: Site, run_id: int) -> None:
    """A killed run stays "running" until its live-progress key expires (the pulse)."""
    assert wait_until(
        lambda: live_progress(site, run_id) is None, timeout=progress.PULSE_SECONDS + 15
    ), f"sync #{run_id} still shows live progress {live_progress(site, run_id)}"


@contextlib.contextmanager
def bandwidth_limit(site: Site, bits_per_second: int) -> Iterator[None]:
    set_bandwidth_limit(site, bits_per_second)
    try:
        yield
    finally:
        set_bandwidth_limit(site, None)


def set_bandwidth_limit(site: Site, bits_per_second: int | None) -> None:
    site.shell(
        "from failover.models import BackupSettings\n"
        f"s = BackupSettings.load(); s.bandwidth_limit = {bits_per_second}; s.save()"
    )


# A damaged or cut stream ----------------------------------------------------------------

STREAMS = [
    pytest.param(CHANGES, 2000, id="change-stream"),
    pytest.param(FILE, 10, id="recording-file"),
]


@pytest.mark.parametrize(("into", "after"), STREAMS)
def test_a_stream_corrupted_in_transit_is_refused_and_the_retry_completes(pair, into, after):
    primary, backup, proxy = pair.primary, pair.backup, pair.proxy
    change_the_primary(primary)
    before = snapshot(backup)
    proxy.inject("corrupt", into=into, after=after)

    run_id = request_sync(backup)
    refused = wait_for_run(backup, run_id, lambda run: run["error"], timeout=60)

    assert refused["status"] in ("pending", "running"), "a transient failure is retried"
    assert re.match(
        r"Attempt \d failed: The change stream from the primary arrived damaged \(.+\); "
        "nothing was applied. The sync will be retried.",
        refused["error"],
    ), refused["error"]
    assert proxy.injected >= 1
    assert_unchanged(backup, before)
    proxy.clear()
    run = wait_for_run(backup, run_id, finished, timeout=ALL_RETRIES + 30)
    assert run["status"] == "succeeded", run["error"]
    assert run["attempts"] >= 2
    assert_in_step(primary, backup)


def test_a_stream_corrupted_on_every_attempt_fails_after_the_last_attempt(pair):
    primary, backup, proxy = pair.primary, pair.backup, pair.proxy
    change_the_primary(primary)
    before = snapshot(backup)
    proxy.inject("corrupt", into=CHANGES, after=2000)

    run_id = request_sync(backup)
    run = wait_for_run(backup, run_id, finished, timeout=ALL_RETRIES + 30)

    assert run["status"] == "failed"
    assert run["attempts"] == runs.MAX_ATTEMPTS
    assert "arrived damaged" in run["error"]
    assert proxy.injected == runs.MAX_ATTEMPTS
    assert_unchanged(backup, before)
    proxy.clear()
    next_run = wait_for_run(backup, request_sync(backup), finished, timeout=60)
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
    broken = wait_for_run(backup, run_id, lambda run: run["error"], timeout=60)

    assert broken["status"] in ("pending", "running"), "a transient failure is retried"
    assert re.match(
        r"Attempt \d failed: The stream from the peer at 127\.0\.0\.1:\d+ \(POST .+\) broke off",
        broken["error"],
    ), broken["error"]
    assert proxy.injected >= 1
    assert_unchanged(backup, before)
    proxy.clear()
    run = wait_for_run(backup, run_id, finished, timeout=ALL_RETRIES + 30)
    if run["status"] == "failed":
        # On a very slow machine every retry came before the snapshot above was done
        # and the fault cleared: the run gave up after its last attempt, as it must,
        # and the backup is still unchanged; the next sync then completes.
        assert run["attempts"] == runs.MAX_ATTEMPTS, run
        assert_unchanged(backup, before)
        run = wait_for_run(backup, request_sync(backup), finished, timeout=120)
    assert run["status"] == "succeeded", run["error"]
    assert_in_step(primary, backup)


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
            timeout=60,
        )
        assert downloading, f"sync #{run_id} never got downloading: {sync_run(backup, run_id)}"
        kill_worker(backup)

    said = backup.manage("failover", "sync-now").stdout
    assert f"Sync #{run_id} is already running" in said, "a live-looking run holds the sync"
    assert_unchanged(backup, before)
    wait_until_dead_run_is_recognised(backup, run_id)
    next_run = wait_for_run(backup, request_sync(backup), finished, timeout=90)
    assert next_run["status"] == "succeeded", next_run["error"]
    killed = sync_run(backup, run_id)
    assert killed["status"] == "failed"
    assert killed["error"].startswith("The worker stopped during this sync")
    assert_in_step(primary, backup)


def test_a_worker_killed_while_applying_leaves_the_backup_unchanged(pair):
    primary, backup = pair.primary, pair.backup
    change_the_primary(primary)
    ballast = add_ballast(primary, APPLY_BALLAST)
    before = snapshot(backup)

    run_id = request_sync(backup, full=True)
    # Part-way: the wipe and at least one batch written in the transaction, not all of them.
    applying = wait_until(
        lambda: (
            (seen := live_progress(backup, run_id))
            and seen["phase"] == "applying"
            and 0 < seen["records"] < seen["expected"]
        ),
        timeout=60,
        interval=0.01,
    )
    assert applying, f"never saw sync #{run_id} part-way through applying"
    kill_worker(backup)

    assert sync_run(backup, run_id)["status"] == "running", "the kill came after the commit"
    assert_unchanged(backup, before)
    # The primary moves on meanwhile; the next sync starts from the old cursor.
    primary.shell(
        f"from appliance.models import Report\nReport.objects.filter(pk__gt={ballast}).delete()"
    )
    wait_until_dead_run_is_recognised(backup, run_id)
    next_run = wait_for_run(backup, request_sync(backup), finished, timeout=90)
    assert next_run["status"] == "succeeded", next_run["error"]
    assert next_run["full"] is False
    assert_in_step(primary, backup)


def test_a_worker_killed_while_a_sync_waits_to_retry_does_not_block_the_next_sync(pair):
    primary, backup, proxy = pair.primary, pair.backup, pair.proxy
    change_the_primary(primary)
    before = snapshot(backup)
    proxy.inject("corrupt", into=CHANGES, after=2000)
    run_id = request_sync(backup)
    # Released after its second attempt: the third is due in 8 to 12 s, time enough to kill.
    wait_for_run(backup, run_id, lambda run: (run["status"], run["attempts"]) == ("pending", 2), 60)

    kill_worker(backup)
    # The fault stays until the check: the worker is restarted at once, and a retry it
    # runs meanwhile must not be caught half-way through a sync that succeeds.
    assert_unchanged(backup, before)
    proxy.clear()
    backup.manage("failover", "sync-now")
    # The retry was due within seconds; the next sync does not wait for the dead
    # worker. On a slow machine the third attempt may still meet the fault before it
    # was cleared, and the fourth comes 20 s later: bounded by the whole schedule.
    run = wait_for_run(backup, latest_run(backup)["id"], finished, timeout=ALL_RETRIES + 30)
    assert run["status"] == "succeeded", run["error"]
    assert_in_step(primary, backup)
