"""Where the backup's apply time goes: the product's apply and wipe against plain SQL.

    .venv/bin/python bench/sync_apply.py [--reports 20000]

No sites: one scratch SQLite database (the production settings: WAL,
synchronous=NORMAL) in this process. The primary's side writes a full
change stream of --reports reports to a spool file with the product code
(failover.sync.stream.records); then, on the same data:

- apply: failover.sync.receive._apply() of that spool into empty tables
  (what a first full sync does after the download), against a plain
  executemany() INSERT of the same rows with the same conversions
  (ISO datetimes to SQLite's UTC text, UUIDs to hex), checked to write the
  same values;
- wipe: failover.sync.receive._wipe() of the full tables (what a full resync
  does before its records), against one DELETE; time, rows it adds to the
  change log, and the process's peak memory (VmHWM) before and after.

With --profile, one more apply runs under cProfile and the functions that
take the most time are printed.

This explains the full-sync and memory benchmarks; it sets no target itself.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRATCH = Path(tempfile.mkdtemp(prefix="appliance-bench-apply-"))
for variable in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
    os.environ.pop(variable, None)
os.environ.update(APPLIANCE_DATA_DIR=str(SCRATCH), DJANGO_SETTINGS_MODULE="appliance.settings")

import django  # noqa: E402

django.setup()

import json  # noqa: E402
import shutil  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from harness import machine, mib, say  # noqa: E402

from appliance.models import Report  # noqa: E402
from appliance.reportgen import generate_reports  # noqa: E402
from failover.models import ChangeLog  # noqa: E402
from failover.sync import receive, stream  # noqa: E402


class Quiet:
    """Stands in for the Redis progress of a run."""

    records = 0

    def publish(self, **_kwargs: object) -> None:
        pass


def memory(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def write_spool(spool: Path) -> receive.Received:
    plan = stream.Plan.make(None, None, full_requested=True)
    records = 0
    with open(spool / "changes.ndjson", "wb") as out:
        for record in stream.records(plan):
            out.write(stream._line(record))
            records += 1
    header = {"full": True, "generation": str(plan.generation), "upto": plan.upto}
    return receive.Received(header=header, records=records, spool=spool)


def empty_reports() -> None:
    Report.objects.all()._raw_delete(Report.objects.db)


def snapshot() -> list[tuple]:
    return list(Report.objects.order_by("id").values_list())


def plain_insert(received: receive.Received) -> None:
    """The same rows through executemany(), converted as Django's SQLite backend stores them."""
    fields = Report._meta.concrete_fields
    columns = ", ".join(field.column for field in fields)
    placeholders = ", ".join("%s" for _ in fields)
    sql = f"INSERT INTO {Report._meta.db_table} ({columns}) VALUES ({placeholders})"  # noqa: S608

    def value(field: object, data: dict) -> object:
        raw = data.get(field.attname)
        if field.name == "recording":
            return (data["recording"] or {}).get("name", "")
        if field.get_internal_type() == "DateTimeField" and raw is not None:
            moment = dt.datetime.fromisoformat(raw).astimezone(dt.UTC).replace(tzinfo=None)
            return moment.isoformat(" ")
        if field.get_internal_type() == "UUIDField":
            return raw.replace("-", "")
        return raw

    rows: list[list] = []
    with transaction.atomic(), connection.cursor() as cursor:
        with open(received.spool / "changes.ndjson", "rb") as spooled:
            for line in spooled:
                record = json.loads(line)
                if record["model"] != "appliance.report":
                    continue
                rows.append([value(field, record["data"]) for field in fields])
                if len(rows) >= receive.APPLY_BATCH:
                    cursor.executemany(sql, rows)
                    rows = []
        if rows:
            cursor.executemany(sql, rows)


def seconds(action: object) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also profile one apply")
    args = parser.parse_args()
    say(machine())
    try:
        call_command("migrate", verbosity=0)
        generate_reports(args.reports, seed=args.seed)
        spool = SCRATCH / "spool"
        spool.mkdir()
        received = write_spool(spool)
        say(f"{received.records} records, {mib((spool / 'changes.ndjson').stat().st_size)}")

        logged_before, peak_before, resident_before = (
            ChangeLog.objects.count(),
            memory("VmHWM"),
            memory("VmRSS"),
        )
        with transaction.atomic():
            wipe = seconds(receive._wipe)
            logged = ChangeLog.objects.count() - logged_before
            transaction.set_rollback(True)
        peak_after = memory("VmHWM")
        with transaction.atomic():
            delete = seconds(lambda: Report.objects.all()._raw_delete(Report.objects.db))
            transaction.set_rollback(True)

        empty_reports()
        apply = seconds(lambda: receive._apply(received, Quiet()))
        applied = snapshot()
        empty_reports()
        plain = seconds(lambda: plain_insert(received))
        if snapshot() != applied:
            raise SystemExit("the plain INSERT did not write what the product's apply wrote")
        if args.profile:
            empty_reports()
            profile = cProfile.Profile()
            profile.runcall(receive._apply, received, Quiet())
            pstats.Stats(profile).sort_stats("cumulative").print_stats(15)
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)

    print()
    print(f"Data:   {args.reports} reports")
    print(
        f"Apply:  receive._apply {apply:.2f} s ({args.reports / apply:.0f} rows/s); "
        f"plain executemany INSERT {plain:.2f} s ({args.reports / plain:.0f} rows/s); "
        f"{apply / plain:.1f}x"
    )
    print(
        f"Wipe:   receive._wipe {wipe:.2f} s, {logged} change-log rows written, peak memory "
        f"{mib(peak_before)} -> {mib(peak_after)} (resident before: {mib(resident_before)}); "
        f"one DELETE {delete:.3f} s"
    )


if __name__ == "__main__":
    main()
