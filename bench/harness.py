"""What the sync benchmarks share: a real primary/backup pair on loopback, and its data.

The pair is the one the multi-site tests use (tests/sites.py): each site runs
`manage.py runsite` (gunicorn, Celery worker and beat, embedded Redis) on its
own SQLite file under var/bench/, and they talk signed HTTPS to each other.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from failover.sync import progress  # noqa: E402
from tests.certs import make_ca  # noqa: E402
from tests.sites import Site, wait_until  # noqa: E402

KEY = "benchmark shared key 00000001"
SYNCED = ["auth.group", "auth.user", "appliance.sitesettings", "appliance.report"]
# Not var/: `make run` (appliance.devpair) treats var/ as its own.
BENCH_ROOT = Path(tempfile.gettempdir()) / "appliance-bench"
# The longest any one command may run (a full sync of 100 000 reports takes well under this).
COMMAND_TIMEOUT = 900


def manage(
    site: Site, *args: str, stdin: str | None = None, timeout: float = COMMAND_TIMEOUT
) -> str:
    """`manage.py` in the site's environment without Site.manage()'s 120 s cap; its stdout."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=site.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} on {site.name} failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def timed(site: Site, *args: str) -> tuple[float, str]:
    """Seconds of wall-clock time a manage.py command took, and its stdout."""
    started = time.perf_counter()
    output = manage(site, *args)
    return time.perf_counter() - started, output


class ProgressWatcher:
    """Reads one run's live progress from the backup's Redis every 20 ms, in a thread.

    The worker publishes {phase, records, bytes, ...} at least every half second
    and at each phase change; `samples` keeps each distinct one with the time
    (this process's monotonic clock) it was first seen.
    """

    POLL_SECONDS = 0.02

    def __init__(self, backup: Site, run_id: int, timeout: float = COMMAND_TIMEOUT) -> None:
        self.key = progress.KEY.format(run_id=run_id)
        self.client = redis.Redis(unix_socket_path=str(backup.data_dir / "redis.sock"))
        self.timeout = timeout
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self.cleared: float | None = None  # when the progress disappeared: the run's end
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ProgressWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            raw = self.client.get(self.key)
            now = time.monotonic()
            if raw is None and self.samples:
                self.cleared = now  # the worker cleared its progress: the run is over
                return
            if raw is not None:
                snapshot = json.loads(raw)
                if not self.samples or snapshot != self.samples[-1][1]:
                    self.samples.append((now, snapshot))
            time.sleep(self.POLL_SECONDS)

    def phases(self) -> dict[str, float]:
        """Seconds from each phase's first sample to the next phase's (or the run's end)."""
        starts: list[tuple[str, float]] = []
        for seen, snapshot in self.samples:
            if not starts or starts[-1][0] != snapshot["phase"]:
                starts.append((snapshot["phase"], seen))
        ends = [seen for _phase, seen in starts[1:]] + [self.cleared or self.samples[-1][0]]
        return {phase: end - start for (phase, start), end in zip(starts, ends, strict=True)}


def next_run_id(backup: Site) -> int:
    """The id the backup's next sync run gets (SQLite AUTOINCREMENT never reuses one)."""
    return last_run(backup).get("id", 0) + 1


def add_data(site: Site, *, reports: int, users: int, seed: int) -> None:
    """Seeded reports (generate_reports) and `users` accounts sharing one password hash.

    bulk_create sends no save signals, so the new users are announced (rows_written).
    """
    if reports:
        manage(site, "generate_reports", str(reports), "--seed", str(seed))
    if users:
        site.shell(
            "from django.contrib.auth.hashers import make_password\n"
            "from django.contrib.auth.models import User\n"
            "from django.db import transaction\n"
            "from appliance.signals import rows_written\n"
            "password = make_password('bench user password 0001')\n"
            "start = User.objects.count()\n"
            "with transaction.atomic():\n"
            "    created = User.objects.bulk_create([\n"
            "        User(username=f'bench{start + i:06d}', first_name='Bench',\n"
            "             last_name=f'User {start + i}', email=f'bench{start + i}@example.com',\n"
            "             password=password)\n"
            f"        for i in range({users})], batch_size=500)\n"
            "    rows_written.send(sender=User, keys=[u.pk for u in created], deleted=False)\n"
        )


def counts(site: Site) -> dict[str, tuple[int, int]]:
    """Row count and sum of ids per synced model: a cheap check that two sites match."""
    output = site.shell(
        "import json\n"
        "from django.contrib.auth.models import Group, User\n"
        "from django.db.models import Count, Sum\n"
        "from appliance.models import Report, SiteSettings\n"
        "print(json.dumps({model.__name__: list(model.objects.aggregate(\n"
        "    n=Count('id'), ids=Sum('id')).values())\n"
        "    for model in (Group, User, SiteSettings, Report)}))\n"
    )
    rows = json.loads(output.strip().splitlines()[-1])
    return {name: tuple(value) for name, value in rows.items()}


def last_run(site: Site) -> dict[str, Any]:
    return site.status()["last_sync"] or {}


def wait_for_run(site: Site, after: int = 0, timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
    """The first sync run with an id above `after` to finish; raises if none does in time."""

    def finished() -> dict[str, Any] | None:
        run = last_run(site)
        done = run.get("id", 0) > after and run["status"] in ("succeeded", "failed")
        return run if done else None

    run = wait_until(finished, timeout, interval=1.0)
    if not run:
        raise RuntimeError(f"no sync finished within {timeout} s:\n{site.log('worker.log')}")
    if run["status"] != "succeeded":
        raise RuntimeError(f"sync #{run['id']} failed: {run['error']}")
    return run


def run_seconds(run: dict[str, Any]) -> float:
    """How long the worker spent on a run: claimed (started_at) to finished_at."""
    started = dt.datetime.fromisoformat(run["started_at"])
    return (dt.datetime.fromisoformat(run["finished_at"]) - started).total_seconds()


def queued_seconds(run: dict[str, Any]) -> float:
    """From the run's request (created_at) to its finish: what someone waiting on it sees."""
    created = dt.datetime.fromisoformat(run["created_at"])
    return (dt.datetime.fromisoformat(run["finished_at"]) - created).total_seconds()


def sync_now(backup: Site, *, full: bool = False) -> dict[str, Any]:
    """`failover sync-now --wait` on the backup; returns the finished run."""
    before = last_run(backup).get("id", 0)
    manage(backup, "failover", "sync-now", "--wait", *(["--full"] if full else []))
    return wait_for_run(backup, after=before)


def set_bandwidth_limit(backup: Site, bits_per_second: int | None) -> None:
    backup.shell(
        "from failover.models import BackupSettings\n"
        f"s = BackupSettings.load(); s.bandwidth_limit = {bits_per_second!r}; s.save()\n"
    )


@dataclass
class Pair:
    base: Path
    primary: Site
    backup: Site

    def start(self) -> None:
        for site in (self.primary, self.backup):
            site.start()

    def stop(self) -> None:
        for site in (self.primary, self.backup):
            site.stop()

    def establish(self) -> dict[str, Any]:
        """Pair the two running sites and wait for the first (full) sync it starts."""
        self.start_establish()
        return wait_for_run(self.backup)

    def start_establish(self) -> None:
        """Pair the two running sites; the backup queues its first (full) sync."""
        manage(
            self.primary, "failover", "establish",
            "--backup-host", "127.0.0.1", "--backup-port", str(self.backup.port),
            "--reverse-host", "127.0.0.1", "--reverse-port", str(self.primary.port),
            "--backup-fingerprint", self.backup.certificate_fingerprint,
        )  # fmt: skip


@contextlib.contextmanager
def pair_of_sites(
    args: argparse.Namespace, *, reports: int, users: int, continuous: bool = False
) -> Iterator[Pair]:
    """Two migrated sites with the same key, `reports` and `users` on the primary; not started.

    The sync benchmarks measure syncs on request: their pair syncs on a schedule (every
    hour) unless `continuous`. Stopped and deleted afterwards unless --keep was given.
    """
    BENCH_ROOT.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="run-", dir=BENCH_ROOT))
    ca = make_ca(base)
    primary, backup = Site("primary", base, ca=ca), Site("backup", base, ca=ca)
    pair = Pair(base, primary, backup)
    try:
        interval = "continuous" if continuous else "hourly"
        for site in (primary, backup):
            manage(site, "migrate", "--noinput")
            manage(site, "failover", "set-key", stdin=KEY + "\n")
            manage(site, "failover", "configure", "--sync-interval", interval)
        started = time.perf_counter()
        add_data(primary, reports=reports, users=users, seed=args.seed)
        say(
            f"primary holds {reports} reports and {users} users "
            f"(generated in {time.perf_counter() - started:.1f} s)"
        )
        yield pair
    finally:
        pair.stop()
        if args.keep:
            say(f"kept the sites' data in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=1, help="generate_reports seed (default 1)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the sites' data directories under var/bench/"
    )
    return parser


def machine() -> str:
    """One line saying where and when the numbers were measured."""
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({cpu}), "
        f"{memory_kib / 1024 / 1024:.1f} GiB RAM, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}, "
        f"{load()}"
    )


def load() -> str:
    """The load average: other work on the machine slows every measurement."""
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (None for fewer than three points)."""
    if len(points) < 3:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return covariance / sum((x - mean_x) ** 2 for x, _ in points)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def mib(size: float) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"
