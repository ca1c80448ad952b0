"""Continuous replication: lag under sustained writes, write latency, and an idle pair's CPU.

    .venv/bin/python bench/replication.py lag [--rates 10 100 500] [--seconds 60]
    .venv/bin/python bench/replication.py latency [--rate 10] [--seconds 60]
    .venv/bin/python bench/replication.py idle [--minutes 10]

A real pair on loopback (tests/sites.py), replicating continuously.

lag: a writer inside the primary's Django (its own process, as a page or the API
would write: Report.objects.create, one transaction each) writes at a fixed rate
and notes when each write committed; a watcher reads the backup's database every
5 ms and notes when each report appeared there. The lag of a write is the time
between the two. Target: p99 under 1 s at 100 writes/s.

latency: reports POSTed to the primary's API at a fixed rate, each answer's round
trip timed, first asynchronously, then with synchronous replication. The ratio is
what synchronous mode costs a client.

idle: the CPU time (user + system, from /proc) of each site's processes over an
idle stretch, and of the two that replication keeps busy (the primary's web,
which holds the backup's requests, and the backup's replication worker). Target:
under 2 % of one core per site.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from harness import ROOT, Site, common_arguments, machine, manage, pair_of_sites, say, wait_until

WRITER = """
import json, os, time
from django.utils import timezone
from appliance.models import Report
rate, seconds, tag, path = json.loads(os.environ["BENCH_WRITER"])
out = open(path, "w")
start = time.monotonic()
n = 0
while time.monotonic() - start < seconds:
    due = start + n / rate
    pause = due - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    report = Report.objects.create(representative="bench", customer_name=f"{tag}-{n}",
                                   started_at=timezone.now(), outcome="resolved")
    out.write(json.dumps([report.pk, time.time()]) + "\\n")
    n += 1
out.close()
"""
TOKEN = "9" * 40


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def start_pair(args: argparse.Namespace):
    context = pair_of_sites(args, reports=0, users=0, continuous=True)
    pair = context.__enter__()
    pair.start()
    pair.establish()
    if not wait_until(lambda: in_step(pair.backup), 120):
        raise RuntimeError("replication did not connect")
    return context, pair


def in_step(backup: Site) -> bool:
    lag = backup.cli_status().get("replication") or {}
    return bool(lag.get("connected")) and lag.get("changes_behind") == 0


class Watcher(threading.Thread):
    """Notes when each report id first appears in the backup's database (every 5 ms)."""

    def __init__(self, backup: Site) -> None:
        super().__init__(daemon=True)
        self.path = backup.data_dir / "db.sqlite3"
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        database = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        last = database.execute("SELECT COALESCE(MAX(id), 0) FROM appliance_report").fetchone()[0]
        while not self.stop.is_set():
            rows = database.execute(
                "SELECT id FROM appliance_report WHERE id > ? ORDER BY id", (last,)
            ).fetchall()
            now = time.time()
            for (key,) in rows:
                self.seen[key] = now
                last = key
            time.sleep(0.005)
        database.close()


def measure_lag(pair, rate: float, seconds: float) -> dict[str, float]:
    written_file = pair.base / f"written-{rate:g}.ndjson"
    watcher = Watcher(pair.backup)
    watcher.start()
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", WRITER],
        env={
            **pair.primary.env,
            "BENCH_WRITER": json.dumps([rate, seconds, f"r{rate:g}", str(written_file)]),
        },
        check=True, timeout=seconds * 3 + 120,
    )  # fmt: skip
    written = [json.loads(line) for line in written_file.read_text().splitlines()]
    last_key = written[-1][0]
    wait_until(lambda: last_key in watcher.seen, 120, interval=0.1)
    watcher.stop.set()
    watcher.join()
    lags = [watcher.seen[key] - at for key, at in written if key in watcher.seen]
    missing = len(written) - len(lags)
    achieved = len(written) / seconds
    return {
        "rate": rate,
        "achieved": achieved,
        "writes": len(written),
        "missing": missing,
        "p50": percentile(lags, 0.50),
        "p99": percentile(lags, 0.99),
        "max": max(lags),
    }


def lag(args: argparse.Namespace) -> None:
    say(machine())
    context, pair = start_pair(args)
    try:
        for rate in args.rates:
            result = measure_lag(pair, rate, args.seconds)
            say(
                f"{rate:g} writes/s asked, {result['achieved']:.0f}/s written for "
                f"{args.seconds:g} s ({result['writes']} writes): lag p50 "
                f"{result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms, max "
                f"{result['max'] * 1000:.0f} ms; {result['missing']} never seen"
            )
    finally:
        context.__exit__(None, None, None)


def post(site: Site, name: str) -> float:
    request = urllib.request.Request(  # noqa: S310 - the site's own loopback URL
        site.url + "/api/v1/reports/",
        data=json.dumps(
            {
                "representative": "r",
                "customer_name": name,
                "started_at": "2026-11-30T10:00:00Z",
                "outcome": "resolved",
            }
        ).encode(),
        headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
    )
    context = None
    if site.ca is not None:
        import ssl

        context = ssl.create_default_context(cafile=site.ca.cert_path)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60, context=context) as answer:  # noqa: S310
        answer.read()
        if answer.status != 201:
            raise RuntimeError(f"HTTP {answer.status}")
    return time.perf_counter() - started


def latencies(site: Site, rate: float, seconds: float, tag: str) -> list[float]:
    taken = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        pause = start + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        taken.append(post(site, f"{tag}-{n}"))
        n += 1
    return taken


def latency(args: argparse.Namespace) -> None:
    say(machine())
    context, pair = start_pair(args)
    try:
        pair.primary.shell(
            "from django.contrib.auth.models import User\n"
            "from appliance.models import ApiToken\n"
            "admin = User.objects.create_superuser('bench', 'b@example.com', 'long password 12')\n"
            f"ApiToken.objects.create(user=admin, digest=ApiToken.digest_of({TOKEN!r}))"
        )
        results = {}
        for mode in ("asynchronous", "synchronous"):
            manage(pair.primary, "failover", "configure", "--replication", mode)
            wait_until(lambda: in_step(pair.backup), 60)
            taken = latencies(pair.primary, args.rate, args.seconds, mode)
            results[mode] = (percentile(taken, 0.5), percentile(taken, 0.99))
            say(
                f"{mode}: {len(taken)} writes at {args.rate:g}/s, p50 "
                f"{results[mode][0] * 1000:.1f} ms, p99 {results[mode][1] * 1000:.1f} ms"
            )
        say(
            f"synchronous / asynchronous: p50 x{results['synchronous'][0] / results['asynchronous'][0]:.2f}, "  # noqa: E501
            f"p99 x{results['synchronous'][1] / results['asynchronous'][1]:.2f}"
        )
    finally:
        context.__exit__(None, None, None)


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def processes(site: Site) -> dict[str, list[int]]:
    """The site's processes by program (the supervisor's children and their pools)."""
    found: dict[str, list[int]] = {}
    for line in site.log(whole=True).splitlines():
        if "started " in line and "(pid " in line:
            name = line.split("started ", 1)[1].split(" ", 1)[0]
            found[name] = [int(line.split("(pid ")[1].split(")")[0])]
    for name, (pid,) in list(found.items()):
        children = subprocess.run(
            ["pgrep", "-g", str(pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        found[name] = sorted({pid, *map(int, children)})
    return found


def idle(args: argparse.Namespace) -> None:
    say(machine())
    context, pair = start_pair(args)
    try:
        seconds = args.minutes * 60
        sites = {"primary": pair.primary, "backup": pair.backup}
        groups = {name: processes(site) for name, site in sites.items()}
        before = {
            name: {prog: cpu_seconds(pids) for prog, pids in progs.items()}
            for name, progs in groups.items()
        }
        time.sleep(seconds)  # the idle stretch being measured
        for name, progs in groups.items():
            used = {prog: cpu_seconds(pids) - before[name][prog] for prog, pids in progs.items()}
            total = sum(used.values())
            detail = ", ".join(
                f"{prog} {value / seconds * 100:.2f} %" for prog, value in used.items()
            )
            say(
                f"{name}: all processes {total / seconds * 100:.2f} % of one core over "
                f"{args.minutes:g} min ({detail})"
            )
    finally:
        context.__exit__(None, None, None)


def main() -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    lag_parser = sub.add_parser("lag")
    lag_parser.add_argument("--rates", type=float, nargs="+", default=[10, 100, 500])
    lag_parser.add_argument("--seconds", type=float, default=60)
    latency_parser = sub.add_parser("latency")
    latency_parser.add_argument("--rate", type=float, default=10)
    latency_parser.add_argument("--seconds", type=float, default=60)
    idle_parser = sub.add_parser("idle")
    idle_parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    {"lag": lag, "latency": latency, "idle": idle}[args.what](args)


if __name__ == "__main__":
    main()
