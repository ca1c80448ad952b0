"""Full sync of a primary's data set against Django's dumpdata + loaddata of the same data.

    .venv/bin/python bench/sync_full.py [--reports 100000] [--users 1000]

Both are measured in the same run on the same data: the backup's first sync
after Establish Relationship (everything, into an empty backup), and
`dumpdata` of the synced models on the primary's database followed by
`loaddata` into a third, freshly migrated database. Target: the sync at least
5x faster.
"""

from __future__ import annotations

from harness import (
    SYNCED,
    ProgressWatcher,
    Site,
    common_arguments,
    counts,
    load,
    machine,
    manage,
    mib,
    next_run_id,
    pair_of_sites,
    queued_seconds,
    run_seconds,
    say,
    timed,
)

TARGET_RATIO = 5.0


def main() -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    say(machine())
    with pair_of_sites(args, reports=args.reports, users=args.users) as pair:
        pair.start()
        say("establishing: the backup's first sync is a full one")
        with ProgressWatcher(pair.backup, next_run_id(pair.backup)) as watcher:
            run = pair.establish()
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in watcher.phases().items())
        sync_seconds = run_seconds(run)
        end_to_end = queued_seconds(run)
        say(
            f"full sync #{run['id']}: {run['records']} records, {mib(run['bytes'])} "
            f"in {sync_seconds:.2f} s ({end_to_end:.2f} s from being queued): {phases}"
        )
        expected = counts(pair.primary)
        if counts(pair.backup) != expected:
            raise SystemExit("the backup does not hold the primary's data after the sync")

        fixture = pair.base / "synced.json"
        dump_seconds, _ = timed(
            pair.primary, "dumpdata", *SYNCED, "--natural-foreign", "-o", str(fixture)
        )
        say(f"dumpdata: {dump_seconds:.2f} s, {mib(fixture.stat().st_size)}")
        target = Site("loaddata", pair.base)
        manage(target, "migrate", "--noinput")
        load_seconds, output = timed(target, "loaddata", str(fixture))
        say(f"loaddata: {load_seconds:.2f} s ({output.strip()})")
        if counts(target) != expected:
            raise SystemExit("loaddata did not reproduce the primary's data")

    baseline = dump_seconds + load_seconds
    ratio = baseline / sync_seconds
    print()
    print(f"Data set:             {args.reports} reports, {args.users} users")
    print(
        f"Full sync:            {sync_seconds:.2f} s ({run['records']} records, "
        f"{run['bytes']} bytes = {mib(run['bytes'])}; {end_to_end:.2f} s from being queued)"
    )
    print(f"Sync phases:          {phases}")
    print(f"dumpdata + loaddata:  {baseline:.2f} s ({dump_seconds:.2f} s + {load_seconds:.2f} s)")
    print(
        f"Ratio:                {ratio:.1f}x faster "
        f"(target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})"
    )
    print(f"Machine at the end:   {load()}")


if __name__ == "__main__":
    main()
