"""The bandwidth throttle alone: how close failover.sync.throttle.Throttle keeps to its rate.

    .venv/bin/python bench/throttle_accuracy.py [--limits 1000000,5000000,20000000] [--seconds 6]

No network, no sites: reads of --read-size bytes are "consumed" back to back,
as the backup's download loop does with each chunk, with the real clock and
time.sleep, optionally next to --busy processes that spin on the CPU (the
contention a loaded machine gives). For each limit it reports the steady rate (least-squares slope
after the first second, so the initial burst is left out), how many sleeps
per second the throttle takes and by how much each sleep overshoots. This
explains the sync bandwidth benchmark; it sets no target itself.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

from harness import machine, slope  # first: it puts the project on sys.path

from failover.sync.throttle import Throttle


def measure(limit: int, read_size: int, duration: float) -> tuple[float, float, float]:
    """(steady rate in bit/s, sleeps per second, mean oversleep in seconds)."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        started = time.monotonic()
        time.sleep(seconds)
        sleeps.append(time.monotonic() - started - seconds)

    throttle = Throttle(limit, sleep=sleep)
    started = time.monotonic()
    points = []
    consumed = 0
    while (now := time.monotonic()) - started < duration:
        throttle.consume(read_size)
        consumed += read_size
        if now - started >= 1.0:
            points.append((time.monotonic(), consumed))
    return slope(points) * 8, len(sleeps) / duration, sum(sleeps) / len(sleeps)


@contextlib.contextmanager
def busy(count: int, seconds: float) -> Iterator[None]:
    """`count` processes spinning on the CPU for at most `seconds` (then stopped)."""
    spin = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", default="1000000,5000000,20000000")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--read-size", type=int, default=16 * 1024)
    parser.add_argument("--busy", type=int, default=0, help="CPU-spinning processes alongside")
    args = parser.parse_args()
    print(machine())
    print(f"Reads of {args.read_size} bytes, {args.busy} busy processes alongside")
    print("| Limit | Steady rate (error) | Sleeps/s | Mean oversleep | Sleeps/s x oversleep |")
    print("|---|---|---|---|---|")
    for limit in (int(limit) for limit in args.limits.split(",")):
        with busy(args.busy, args.seconds + 5):
            rate, per_second, oversleep = measure(limit, args.read_size, args.seconds)
        print(
            f"| {limit / 1e6:g} Mbit/s | {rate / 1e6:.3f} Mbit/s ({rate / limit - 1:+.1%}) "
            f"| {per_second:.0f} | {oversleep * 1000:.2f} ms | {per_second * oversleep:.1%} |"
        )


if __name__ == "__main__":
    main()
