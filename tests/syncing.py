"""Watching and disturbing data syncs between real sites, for the multi-site tests.

Every wait here is for an event (a run's status, its live progress, a new
worker's pid), read straight from the site's database or Redis, and bounded by
a generous limit that only a broken sync reaches. Where a test needs the
product's own timers on its side, it holds them: a killed worker's pulse is
frozen until the test lets it lapse (`frozen_pulse`), and a sync waiting to
retry is retried when the test says so (`request_sync` on a waiting run).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failover.sync import progress, runs
from tests.sites import Site, wait_until

SYNCED = ["auth.group", "auth.user", "appliance.sitesettings", "appliance.report"]
# The longest a sync may take here, however busy the machine: only a broken one gets there.
SYNC_BUDGET = 300


@dataclass(frozen=True)
class Snapshot:
    rows: list[dict[str, Any]]
    files: dict[str, str]


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
    assert now.files == before.files, file_differences(now.files, before.files)


def assert_in_step(primary: Site, backup: Site) -> None:
    on_backup, on_primary = backup.dump(*SYNCED), primary.dump(*SYNCED)
    assert on_backup == on_primary, differences(on_backup, on_primary)
    on_backup_files, on_primary_files = media_files(backup), media_files(primary)
    assert on_backup_files == on_primary_files, file_differences(on_backup_files, on_primary_files)


def file_differences(files: dict[str, str], expected: dict[str, str]) -> str:
    """The recording files that came, went or changed: what to read when a check fails."""
    lines = [f"missing {name}" for name in expected.keys() - files.keys()]
    lines += [f"extra {name}" for name in files.keys() - expected.keys()]
    lines += [
        f"changed {name}"
        for name in files.keys() & expected.keys()
        if files[name] != expected[name]
    ]
    return "\n".join(sorted(lines)[:20])


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


def wait_for_syncs_in_flight(site: Site) -> None:
    """Until no sync waits or runs on the site. A sync the site began on its own (the
    new backup's after a role change, or one on its schedule) would change its data
    under a test's snapshot, and hold off the sync the test asks for."""

    def at_rest() -> bool:
        # The product lets one sync at a time wait or run: the latest is the one.
        run = site.latest_run()
        return run is None or finished(run)

    assert wait_until(at_rest, SYNC_BUDGET, interval=0.1), (
        f"a sync is still in flight on {site.name}\n{site.log('worker.log')}"
    )


def request_sync(site: Site, *, full: bool = False) -> int:
    """`failover sync-now` on the backup; the number of the sync it started."""
    said = site.manage("failover", "sync-now", *(["--full"] if full else [])).stdout
    started = re.search(r"ync #(\d+) started", said)
    assert started, f"no new sync started: {said}"
    return int(started.group(1))


def finished(run: dict[str, Any]) -> bool:
    return run["status"] in ("succeeded", "failed")


def waiting_to_retry(run: dict[str, Any]) -> bool:
    return run["status"] == "pending" and run["retry_at"] is not None


def wait_for_run(
    site: Site,
    run_id: int,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = SYNC_BUDGET,
) -> dict[str, Any]:
    """The run once `until` holds for it (read from the site's database)."""

    def reached() -> dict[str, Any] | None:
        run = site.sync_run(run_id)
        return run if run and until(run) else None

    run = wait_until(reached, timeout, interval=0.1)
    assert run, f"sync #{run_id} is still {site.sync_run(run_id)}\n{site.log('worker.log')}"
    return run


def retry_until_finished(site: Site, run_id: int) -> dict[str, Any]:
    """Each time the run waits to retry, it is tried again at once; the finished run.

    The product's backoff (seconds, growing) is not what such a test is about; the
    attempts are, and each one happens when the test asks for it.
    """
    nudged = 0
    for _ in range(runs.MAX_ATTEMPTS):
        run = wait_for_run(
            site,
            run_id,
            lambda run, after=nudged: (
                finished(run) or (waiting_to_retry(run) and run["attempts"] > after)
            ),
        )
        if finished(run):
            return run
        nudged = run["attempts"]
        retry_now(site, run_id)
    raise AssertionError(f"sync #{run_id} never finished: {site.sync_run(run_id)}")


def retry_now(site: Site, run_id: int) -> None:
    """The run, if it still waits to retry, is tried again at once (as Sync Now would).

    Unlike Sync Now, this never starts another sync: the run's own countdown may have
    fired and closed it while the test got round to asking, and a new run then would
    meet the test's fault in the background, after the test has moved on.
    """
    site.shell(
        "from failover import jobs\n"
        "from failover.models import SyncRun\n"
        f"if SyncRun.objects.get(pk={run_id}).retry_now(): jobs.run_sync({run_id})\n"
    )


def live_progress(site: Site, run_id: int) -> dict[str, Any] | None:
    """The run's live progress, read straight from the site's Redis, within milliseconds."""
    with site.redis() as client:
        raw = client.get(progress.KEY.format(run_id=run_id))
    return json.loads(raw) if raw else None


def worker_pid(site: Site) -> int | None:
    """The pid of the site's current Celery worker, as its supervisor logged it."""
    started = re.findall(r"started worker \(pid (\d+)\)", site.log(whole=True))
    return int(started[-1]) if started else None


def kill_worker(site: Site) -> None:
    """SIGKILL the worker and its pool; wait until the supervisor has started a new one."""
    pid = worker_pid(site)
    assert pid, f"no worker in the site's log:\n{site.log()}"
    os.killpg(pid, signal.SIGKILL)
    assert wait_until(lambda: worker_pid(site) not in (None, pid), timeout=120), site.log()


@contextlib.contextmanager
def stopped_worker(site: Site) -> Iterator[int]:
    """The worker and its pool frozen (SIGSTOP): nothing it holds happens meanwhile."""
    pid = worker_pid(site)
    assert pid, f"no worker in the site's log:\n{site.log()}"
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGCONT)


def step_worker_until(
    site: Site,
    run_id: int,
    reached: Callable[[dict[str, Any]], bool],
    *,
    step: float = 0.02,
    steps: int = 3000,
    pause: float = 0.0,
) -> dict[str, Any] | None:
    """Freeze the worker, then let it run in slices of `step` seconds until the run's
    published progress satisfies `reached`; the worker is left frozen. The progress it
    returns is the one that satisfied `reached` (None: the run ended first, or never got
    there in `steps` slices). With `pause` the worker stays frozen that long between
    slices: as long as progress's own interval, every slice publishes what it did."""
    pid = worker_pid(site)
    assert pid, f"no worker in the site's log:\n{site.log()}"
    os.killpg(pid, signal.SIGSTOP)
    for _ in range(steps):
        seen = live_progress(site, run_id)
        if seen is not None and reached(seen):
            return seen
        if finished(site.sync_run(run_id)):
            return None
        time.sleep(pause)
        os.killpg(pid, signal.SIGCONT)
        time.sleep(step)
        os.killpg(pid, signal.SIGSTOP)
    return None


@contextlib.contextmanager
def frozen_pulse(site: Site, run_id: int) -> Iterator[None]:
    """Kill the worker running `run_id` with the run's pulse held: it looks alive until
    the block ends, then it lapses at once (as if the pulse had expired by itself).

    The pulse is the run's live-progress key: its worker renews it, and its expiry
    tells that the worker died. Frozen, a test can check what a live-looking run
    holds without racing the expiry; lapsed, it need not wait for it.
    """
    key = progress.KEY.format(run_id=run_id)
    pid = worker_pid(site)
    assert pid, f"no worker in the site's log:\n{site.log()}"
    with site.redis() as client:
        os.killpg(pid, signal.SIGKILL)
        assert client.persist(key), f"sync #{run_id} had no pulse when its worker was killed"
        assert wait_until(lambda: worker_pid(site) not in (None, pid), timeout=120), site.log()
        try:
            yield
        finally:
            client.delete(key)


def wait_until_dead_run_is_recognised(site: Site, run_id: int) -> None:
    """A killed run counts as running until its pulse lapses: at once after `frozen_pulse`,
    within a pulse's lifetime after a plain kill."""
    assert wait_until(
        lambda: live_progress(site, run_id) is None, timeout=progress.PULSE_SECONDS + 60
    ), f"sync #{run_id} still shows a pulse"


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
