"""Peak memory of both sides of a full sync, at two data sizes.

    .venv/bin/python bench/sync_memory.py [--sizes 10000,100000] [--users 1000]

For each size a fresh pair is built, and two full syncs are measured, each
on freshly started processes so that the kernel's high-water mark (VmHWM in
/proc/<pid>/status) belongs to that sync alone:

- first sync: right after Establish Relationship, into an empty backup;
- full resync: `failover sync-now --full` after both sites restarted, into a
  backup that already holds the same data.

Measured processes: the primary's gunicorn worker (it serves the change
stream) and the backup's Celery pool processes (one of them downloads and
applies it; the larger is shown). Target: the peak does not grow with the
data size beyond a fixed buffer (here: at most TOLERANCE more growth at the
largest size than at the smallest).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from harness import (
    Pair,
    Site,
    common_arguments,
    machine,
    manage,
    mib,
    pair_of_sites,
    run_seconds,
    say,
    wait_for_run,
)

SETTLE_SECONDS = 3.0
# "No growth beyond a fixed buffer": the peak's growth at the largest size may exceed
# the growth at the smallest by this much at most (allocator and page-cache noise).
TOLERANCE = 5 * 1024 * 1024


@dataclass(frozen=True)
class Memory:
    """Resident set size (bytes) of one process before a sync, and its peak since it started."""

    pid: int
    before: int
    peak: int = 0

    @property
    def growth(self) -> int:
        return self.peak - self.before


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no {field} for pid {pid}")


def workers(site: Site, program: str) -> list[int]:
    """Pids of the site's `program` ("gunicorn" or "celery") processes that do the work.

    Both run a parent that only supervises: the gunicorn arbiter and the Celery
    worker's main process. The work happens in their children.
    """
    found = []
    for process in psutil.Process(site.process.pid).children(recursive=True):
        command = " ".join(process.cmdline())
        parent = " ".join(process.parent().cmdline())
        if program in command and program in parent and "beat" not in command:
            found.append(process.pid)
    if not found:
        raise RuntimeError(f"no {program} worker process found on {site.name}")
    return found


def before(site: Site, program: str) -> list[Memory]:
    return [Memory(pid, _status(pid, "VmRSS")) for pid in workers(site, program)]


def after(memories: list[Memory]) -> Memory:
    """The process whose high-water mark is highest, with that mark."""
    peaks = [Memory(m.pid, m.before, _status(m.pid, "VmHWM")) for m in memories]
    return max(peaks, key=lambda memory: memory.peak)


def restart(pair: Pair) -> None:
    pair.stop()
    pair.start()
    time.sleep(SETTLE_SECONDS)


def measure(pair: Pair, scenario: str) -> tuple[dict, Memory, Memory]:
    web, worker = before(pair.primary, "gunicorn"), before(pair.backup, "celery")
    if scenario == "first sync":
        run = pair.establish()
    else:
        previous = pair.backup.status()["last_sync"]["id"]
        manage(pair.backup, "failover", "sync-now", "--full", "--wait")
        run = wait_for_run(pair.backup, after=previous)
    return run, after(web), after(worker)


def main() -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated report counts")
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    say(machine())
    rows = []
    for size in (int(size) for size in args.sizes.split(",")):
        with pair_of_sites(args, reports=size, users=args.users) as pair:
            pair.start()
            time.sleep(SETTLE_SECONDS)
            for scenario in ("first sync", "full resync"):
                if scenario == "full resync":
                    restart(pair)
                run, web, worker = measure(pair, scenario)
                rows.append((size, scenario, run, web, worker))
                say(
                    f"{size} reports, {scenario} #{run['id']} ({run_seconds(run):.1f} s, "
                    f"{mib(run['bytes'])}): primary web {mib(web.before)} -> {mib(web.peak)}, "
                    f"backup worker {mib(worker.before)} -> {mib(worker.peak)}"
                )

    print()
    print("| Reports | Sync | Stream | Primary web worker: before -> peak (growth) "
          "| Backup Celery worker: before -> peak (growth) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for size, scenario, run, web, worker in rows:
        print(
            f"| {size} | {scenario} ({run_seconds(run):.1f} s) | {mib(run['bytes'])} "
            f"| {mib(web.before)} -> {mib(web.peak)} (+{mib(web.growth)}) "
            f"| {mib(worker.before)} -> {mib(worker.peak)} (+{mib(worker.growth)}) |"
        )
    print()
    sizes = sorted({size for size, *_ in rows})
    measured = {(size, scenario): (web, worker) for size, scenario, _run, web, worker in rows}
    for scenario in ("first sync", "full resync"):
        for index, side in enumerate(("primary web", "backup worker")):
            small = measured[sizes[0], scenario][index].growth
            large = measured[sizes[-1], scenario][index].growth
            verdict = "met" if large - small <= TOLERANCE else "NOT met"
            print(
                f"{scenario}, {side}: peak growth {mib(small)} at {sizes[0]} reports, "
                f"{mib(large)} at {sizes[-1]} (target: at most {mib(TOLERANCE)} more: {verdict})"
            )


if __name__ == "__main__":
    main()
