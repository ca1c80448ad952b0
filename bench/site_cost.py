"""What the test suite pays for a site and for a management command, in time and CPU.

    .venv/bin/python bench/site_cost.py [--rounds 3] [--idle-seconds 20]

The multi-site tests start real sites (tests/sites.py: `manage.py runsite` over TLS,
with gunicorn, three Celery workers, beat and an embedded Redis), one after another,
and run management commands against them to set them up and read their state. Each
step below is timed on the wall clock and in CPU: the machine's non-idle time (the `cpu`
line of /proc/stat) over the step, so run it on an otherwise idle machine. Below the start,
the CPU each of the site's programs had spent when /login first answered (psutil: the
program's process and its children). Prints each step's median over the rounds.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from harness import SYNCED, machine, say

from tests.certs import Certificate, make_ca
from tests.sites import Site

TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """Non-idle CPU time of the whole machine so far (user, nice, system, irq, softirq, steal)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS


def measured(step: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) that `step` took."""
    cpu, wall = busy_seconds(), time.monotonic()
    step()
    return time.monotonic() - wall, busy_seconds() - cpu


Results = dict[str, list[tuple[float, float]]]


def cpu_of(process: psutil.Process, *, children: bool = True) -> float:
    """User and system CPU of `process`, and of its children (live or reaped) if asked."""
    try:
        times = process.cpu_times()
        own = times.user + times.system
        if not children:
            return own
        own += times.children_user + times.children_system
        return own + sum(cpu_of(child) for child in process.children())
    except psutil.NoSuchProcess:
        return 0.0


def program_cpu(site: Site) -> dict[str, float]:
    """CPU each program of the running site has spent: runsite itself, web, workers, beat."""
    runsite = psutil.Process(site.process.pid)
    spent = {"runsite": cpu_of(runsite, children=False)}
    for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", site.log(whole=True)):
        spent[name] = cpu_of(psutil.Process(int(pid)))
    return spent


def one_round(
    name: str, base: Path, ca: Certificate, idle_seconds: float, results: Results
) -> None:
    def note(step_name: str, step: Callable[[], object]) -> None:
        results.setdefault(step_name, []).append(measured(step))

    site = Site(name, base, ca=ca)
    try:
        note("start until /login answers", site.start)
        for program, cpu in program_cpu(site).items():
            results.setdefault(f"  of which {program}", []).append((float("nan"), cpu))
        status = ("failover", "status", "--json")
        note("manage.py " + " ".join(status), lambda: site.manage(*status))
        note("manage.py shell -c (one line)", lambda: site.shell("print(1)"))
        note(
            "manage.py dumpdata of the synced models (no reports)",
            lambda: site.manage("dumpdata", *SYNCED, "--natural-foreign"),
        )
        time.sleep(2)  # the start's last stragglers (first beat, first polls)
        wall, cpu = measured(lambda: time.sleep(idle_seconds))
        results.setdefault("idle, per second", []).append((1.0, cpu / wall))
        note("stop (SIGTERM, every process exits)", site.stop)
    finally:
        site.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=20)
    args = parser.parse_args()
    say(machine())
    results: Results = {}
    base = Path(tempfile.mkdtemp(prefix="site-cost-"))
    ca = make_ca(base)
    try:
        # The first site of a process migrates the template database that later ones copy.
        Site("warm-up", base, ca=ca)
        for round_ in range(args.rounds):
            say(f"round {round_ + 1} of {args.rounds}")
            one_round(f"site-{round_}", base, ca, args.idle_seconds, results)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n{'step':<56} {'wall (s)':>9} {'CPU (s)':>9}")
    for name, samples in results.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        shown = "" if math.isnan(wall) else f"{wall:.2f}"
        print(f"{name:<56} {shown:>9} {cpu:>9.2f}")


if __name__ == "__main__":
    main()
