"""Peak memory and time of a site backup and its restore, at two data sizes.

    .venv/bin/python bench/backup_memory.py [--sizes 10000,100000] [--users 1000]

For each size a fresh site (its own SQLite file, not started: the CLI needs no
running processes) gets N reports, one in a hundred with a recording, and
`--users` accounts. Then, each in its own process so that the kernel's peak
resident set size (ru_maxrss from wait4) belongs to it alone:

- baseline: `manage.py shell -c "import failover.backups"` (Python, Django and
  the modules a backup loads, doing nothing);
- backup: `manage.py failover backup FILE`;
- restore: `manage.py failover restore FILE` into a second, empty site.

The restored site is checked against the first (row counts and id sums).
Target: the peak does not grow with the data beyond a fixed buffer: at the
largest size, at most TOLERANCE (5 MiB) more above the baseline than at the smallest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from harness import (
    BENCH_ROOT,
    ROOT,
    Site,
    add_data,
    common_arguments,
    counts,
    machine,
    manage,
    mib,
    say,
)

# As bench/sync_memory.py: allocator and page-cache noise, and the per-file bookkeeping of
# ten times as many recordings.
TOLERANCE = 5 * 1024 * 1024


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak: int
    output: str


def measured(site: Site, *args: str) -> Measured:
    """Run manage.py in the site's environment; its wall time and peak RSS (bytes)."""
    started = time.perf_counter()
    with open(site.data_dir / "bench-command.log", "w+b") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=site.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        output = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{output[-4000:]}")
    return Measured(seconds, usage.ru_maxrss * 1024, output)


def run_size(size: int, users: int, seed: int, keep: bool) -> dict[str, object]:
    folder = BENCH_ROOT / f"backup-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    source = Site("source", folder)
    target = Site("target", folder)
    say(f"{size} reports: generating (with {size // 100} recordings) and {users} users")
    manage(source, "generate_reports", str(size), "--seed", str(seed),
           "--with-recordings", str(size // 100))  # fmt: skip
    add_data(source, reports=0, users=users, seed=seed)
    baseline = measured(source, "shell", "--no-imports", "-c", "import failover.backups")
    path = folder / "site.tar.gz"
    say(f"{size} reports: backup")
    backup = measured(source, "failover", "backup", str(path))
    say(f"{size} reports: restore into an empty site")
    restore = measured(target, "failover", "restore", str(path))
    same = counts(source) == counts(target)
    result = {
        "size": size,
        "file": path.stat().st_size,
        "baseline": baseline.peak,
        "backup": backup,
        "restore": restore,
        "same": same,
    }
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def main() -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--users", type=int, default=1000)
    options = parser.parse_args()
    say(machine())
    results = [
        run_size(int(size), options.users, options.seed, options.keep)
        for size in options.sizes.split(",")
    ]
    print()
    print(
        "| reports | file | baseline peak | backup: time, peak | restore: time, peak | same data |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        backup, restore = r["backup"], r["restore"]
        print(
            f"| {r['size']:,} | {mib(r['file'])} | {mib(r['baseline'])} "
            f"| {backup.seconds:.1f} s, {mib(backup.peak)} "
            f"| {restore.seconds:.1f} s, {mib(restore.peak)} | {'yes' if r['same'] else 'NO'} |"
        )
    first, last = results[0], results[-1]
    for kind in ("backup", "restore"):
        growth = (last[kind].peak - last["baseline"]) - (first[kind].peak - first["baseline"])
        verdict = "within" if growth <= TOLERANCE else "OVER"
        print(
            f"{kind}: above baseline {mib(first[kind].peak - first['baseline'])} at "
            f"{first['size']:,}, {mib(last[kind].peak - last['baseline'])} at "
            f"{last['size']:,}: growth {mib(growth)}, {verdict} the {mib(TOLERANCE)} tolerance"
        )
    say(f"done; {machine().split(', ')[-1]}")


if __name__ == "__main__":
    main()
