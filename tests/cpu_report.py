"""Where the suite's CPU goes: each test's CPU, its own and its finished children's.

    .venv/bin/python -m pytest -p tests.cpu_report -n 4 --dist loadfile --no-loadscope-reorder

Each worker appends one line per test to `$CPU_REPORT_DIR/<worker>.tsv` (default
var/cpu-report): the test's id, its wall time and the CPU (user + system) of the
test process and of every child it waited for in that time (the sites it stopped,
the management commands it ran), and of the sites it killed (`Site.kill` counts
them). A site still running when the test ends is counted by the test that ends
it, which for a module's shared pair is the file's last test. Not counted: the
processes of the lab's namespaces that `Site.kill` did not end, and chromium,
until its module closes it. `python -m tests.cpu_report` sums the lines per file.
"""

from __future__ import annotations

import collections
import os
import resource
import sys
import time
from pathlib import Path

import pytest

from tests import sites

ROOT = Path(__file__).resolve().parent.parent


def _folder() -> Path:
    return Path(os.environ.get("CPU_REPORT_DIR", ROOT / "var" / "cpu-report"))


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    killed = sites.killed_cpu_seconds
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + killed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    started, cpu = time.monotonic(), _cpu()
    yield
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with (folder / f"{worker}.tsv").open("a") as report:
        report.write(f"{item.nodeid}\t{time.monotonic() - started:.2f}\t{_cpu() - cpu:.2f}\n")


def main() -> None:
    wall: dict[str, float] = collections.Counter()
    cpu: dict[str, float] = collections.Counter()
    for path in _folder().glob("*.tsv"):
        for line in path.read_text().splitlines():
            nodeid, seconds, used = line.split("\t")
            name = nodeid.split("::")[0]
            wall[name] += float(seconds)
            cpu[name] += float(used)
    print(f"{'file':60} {'wall s':>8} {'CPU s':>8}")
    for name, used in sorted(cpu.items(), key=lambda pair: -pair[1]):
        print(f"{name:60} {wall[name]:8.0f} {used:8.0f}")
    print(f"{'all':60} {sum(wall.values()):8.0f} {sum(cpu.values()):8.0f}", file=sys.stdout)


if __name__ == "__main__":
    main()
