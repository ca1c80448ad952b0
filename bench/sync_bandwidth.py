"""Bandwidth accuracy: the rate a full sync achieves at several Data-Sync Bandwidth Limits.

    .venv/bin/python bench/sync_bandwidth.py [--limits 1000000,5000000,20000000] [--seconds 12]

For each limit (bits per second, from BANDWIDTH_STEPS in failover/models.py),
the primary holds enough reports for the download to last about --seconds,
the backup's BackupSettings.bandwidth_limit is set, and a full sync runs.
While it runs, this script reads the sync's live progress (phase, bytes) from
the backup's Redis every 20 ms, straight from the socket, and times it with
its own clock:

- average: download bytes * 8 / download time, from the moment the phase
  turns to "downloading" to the moment it leaves it (connection set-up, the
  primary's first bytes and the throttle's initial burst included);
- steady: least-squares slope of bytes over time across the download.

Target: within +-5 % of the limit over at least 10 s. An unlimited full sync of
the largest data set runs first, to show the limits are below what the pair can do.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass

from harness import (
    Pair,
    ProgressWatcher,
    common_arguments,
    load,
    machine,
    manage,
    mib,
    next_run_id,
    pair_of_sites,
    say,
    set_bandwidth_limit,
    slope,
    wait_for_run,
)

TOLERANCE = 0.05
# A first guess of a report's size in the stream; the unlimited sync measures the real one.
GUESSED_BYTES_PER_REPORT = 1000


@dataclass(frozen=True)
class Download:
    run_id: int
    bytes: int
    seconds: float
    steady_rate: float | None  # bytes per second; None when the download was too short
    intervals: list[float]  # bytes per second between consecutive progress samples

    @property
    def average_rate(self) -> float:
        return self.bytes / self.seconds


def watch_full_sync(pair: Pair, timeout: float) -> Download:
    """Run a full sync on the backup and follow its download phase through Redis."""
    run_id = next_run_id(pair.backup)
    with ProgressWatcher(pair.backup, run_id, timeout) as watcher:
        manage(pair.backup, "failover", "sync-now", "--full")
        run = wait_for_run(pair.backup, after=run_id - 1, timeout=timeout)
    samples = [(seen, snapshot["bytes"], snapshot["phase"]) for seen, snapshot in watcher.samples]
    downloading = [(seen, size) for seen, size, phase in samples if phase == "downloading"]
    # The first sample after the download carries its total, published as the phase changed.
    ended, total = next((seen, size) for seen, size, _ in samples if seen > downloading[-1][0])
    if run["files"] or total != run["bytes"]:
        raise SystemExit(f"unexpected: the run sent {run['bytes']} bytes, progress saw {total}")
    points = [*downloading[1:], (ended, total)]
    return Download(
        run_id=run_id,
        bytes=total,
        seconds=ended - downloading[0][0],
        steady_rate=slope(points),
        intervals=[(b2 - b1) / (t2 - t1) for (t1, b1), (t2, b2) in itertools.pairwise(points)],
    )


def spread(rates: list[float]) -> str:
    """Min, median and max of rates in bytes per second, as Mbit/s."""
    values = [rate * 8 / 1e6 for rate in (min(rates), statistics.median(rates), max(rates))]
    return "/".join(f"{value:.2f}" for value in values)


def trim_reports(pair: Pair, keep: int) -> None:
    """Delete the primary's newest reports beyond the first `keep` (ordered by id)."""
    pair.primary.shell(
        "from appliance.models import Report\n"
        f"cutoff = Report.objects.order_by('id').values_list('id', flat=True)[{keep - 1}]\n"
        "Report.objects.filter(id__gt=cutoff).delete()\n"
    )


def main() -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--limits",
        default="1000000,5000000,20000000",
        help="comma-separated bits per second (default 1, 5 and 20 Mbit/s)",
    )
    parser.add_argument(
        "--seconds", type=float, default=12.0, help="how long each download should last"
    )
    args = parser.parse_args()
    limits = sorted((int(limit) for limit in args.limits.split(",")), reverse=True)
    say(machine())
    reports = math.ceil(limits[0] / 8 * args.seconds / GUESSED_BYTES_PER_REPORT)
    results = []
    with pair_of_sites(args, reports=reports, users=0) as pair:
        pair.start()
        pair.establish()
        unlimited = watch_full_sync(pair, timeout=600)
        bytes_per_report = unlimited.bytes / reports
        say(
            f"unlimited full sync of {reports} reports: {mib(unlimited.bytes)} downloaded at "
            f"{unlimited.average_rate * 8 / 1e6:.1f} Mbit/s"
        )
        for limit in limits:
            keep = math.ceil(limit / 8 * args.seconds / bytes_per_report)
            if keep < reports:
                trim_reports(pair, keep)
                reports = keep
            set_bandwidth_limit(pair.backup, limit)
            download = watch_full_sync(pair, timeout=args.seconds * 4 + 120)
            if download.steady_rate is None:
                raise SystemExit(f"the download at {limit} bit/s was too short to measure")
            results.append((limit, reports, download))
            say(
                f"limit {limit / 1e6:g} Mbit/s, {reports} reports: {mib(download.bytes)} in "
                f"{download.seconds:.2f} s, average {download.average_rate * 8 / 1e6:.3f} Mbit/s, "
                f"steady {download.steady_rate * 8 / 1e6:.3f} Mbit/s; "
                f"per half second min/median/max {spread(download.intervals)} Mbit/s"
            )

    print()
    print(
        f"Unlimited:  {unlimited.average_rate * 8 / 1e6:.1f} Mbit/s "
        f"({mib(unlimited.bytes)} in {unlimited.seconds:.2f} s)"
    )
    print(
        "| Limit | Data | Download time | Average rate (error) | Steady rate (error) "
        "| Per 0.5 s min/median/max | Target |"
    )
    print("|---|---|---|---|---|---|---|")
    for limit, count, download in results:
        errors = [rate * 8 / limit - 1 for rate in (download.average_rate, download.steady_rate)]
        met = download.seconds >= 10 and all(abs(error) <= TOLERANCE for error in errors)
        print(
            f"| {limit / 1e6:g} Mbit/s | {count} reports, {mib(download.bytes)} "
            f"| {download.seconds:.2f} s "
            f"| {download.average_rate * 8 / 1e6:.3f} Mbit/s ({errors[0]:+.1%}) "
            f"| {download.steady_rate * 8 / 1e6:.3f} Mbit/s ({errors[1]:+.1%}) "
            f"| {spread(download.intervals)} Mbit/s "
            f"| {'met' if met else 'NOT met'} |"
        )
    print(f"Machine at the end: {load()}")


if __name__ == "__main__":
    main()
