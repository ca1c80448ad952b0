"""Incremental sync of 100 changes on a large data set, against the full sync of the same set.

    .venv/bin/python bench/sync_incremental.py [--reports 100000] [--users 1000] [--rounds 3]

The backup first takes its full sync after Establish Relationship (its bytes
are the reference). Then, each round, the primary gets 100 changes (40
creates, 40 updates, 20 deletes, across reports and users) and the backup runs
`failover sync-now --wait`. Targets: each incremental sync under 1 s and under
2 % of the full sync's bytes.
"""

from __future__ import annotations

import statistics

from harness import (
    Site,
    common_arguments,
    counts,
    machine,
    mib,
    pair_of_sites,
    queued_seconds,
    run_seconds,
    say,
    sync_now,
)

CHANGES = 100
TARGET_SECONDS = 1.0
TARGET_SHARE = 0.02


def make_changes(primary: Site, round_number: int) -> None:
    """40 creates, 40 updates, 20 deletes, through the ORM as the portal makes them.

    Each round touches rows no earlier round touched, so each sync carries exactly 100 records.
    """
    first = round_number * 45
    primary.shell(
        "from django.contrib.auth.hashers import make_password\n"
        "from django.contrib.auth.models import User\n"
        "from appliance.models import Report\n"
        "from appliance.reportgen import generate_reports\n"
        f"generate_reports(30, seed={10_000 + round_number})\n"
        "password = make_password('a new user password 0001')\n"
        "for i in range(10):\n"
        f"    User.objects.create(username=f'new-{round_number}-{{i}}', password=password)\n"
        f"reports = list(Report.objects.order_by('id')[{first}:{first + 45}])\n"
        "for report in reports[:30]:\n"
        "    report.outcome = 'escalated'; report.save()\n"
        "for report in reports[30:]:\n"
        "    report.delete()\n"
        "users = list(User.objects.filter(username__startswith='bench')"
        f".order_by('id')[{first // 3}:{first // 3 + 15}])\n"
        "for user in users[:10]:\n"
        "    user.last_name = 'Renamed'; user.save()\n"
        "for user in users[10:]:\n"
        "    user.delete()\n"
    )


def main() -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="incremental syncs to measure")
    args = parser.parse_args()
    say(machine())
    with pair_of_sites(args, reports=args.reports, users=args.users) as pair:
        pair.start()
        full = pair.establish()
        say(
            f"full sync #{full['id']}: {full['records']} records, {mib(full['bytes'])} "
            f"in {run_seconds(full):.2f} s"
        )
        incremental = []
        for round_number in range(args.rounds):
            make_changes(pair.primary, round_number)
            run = sync_now(pair.backup)
            if run["full"] or run["records"] != CHANGES:
                raise SystemExit(f"expected an incremental sync of {CHANGES} records, got {run}")
            if counts(pair.backup) != counts(pair.primary):
                raise SystemExit("the backup does not match the primary after the sync")
            incremental.append(run)
            say(
                f"incremental sync #{run['id']}: {run['records']} records, {run['bytes']} bytes "
                f"in {run_seconds(run):.3f} s ({queued_seconds(run):.3f} s from being queued)"
            )

    seconds = [run_seconds(run) for run in incremental]
    shares = [run["bytes"] / full["bytes"] for run in incremental]
    worst_seconds, worst_share = max(seconds), max(shares)
    print()
    print(f"Data set:          {args.reports} reports, {args.users} users")
    print(
        f"Full sync:         {full['bytes']} bytes ({mib(full['bytes'])}), "
        f"{full['records']} records"
    )
    for run, took, share in zip(incremental, seconds, shares, strict=True):
        print(
            f"{'Incremental #' + str(run['id']) + ':':<19}{took:.3f} s, {run['records']} records, "
            f"{run['bytes']} bytes = {share:.4%} of the full sync "
            f"({queued_seconds(run):.3f} s from being queued)"
        )
    print(f"Median:            {statistics.median(seconds):.3f} s, {statistics.median(shares):.4%}")
    print(
        f"Targets:           under {TARGET_SECONDS:.0f} s: "
        f"{'met' if worst_seconds < TARGET_SECONDS else 'NOT met'} (worst {worst_seconds:.3f} s); "
        f"under {TARGET_SHARE:.0%} of the full bytes: "
        f"{'met' if worst_share < TARGET_SHARE else 'NOT met'} (worst {worst_share:.4%})"
    )


if __name__ == "__main__":
    main()
