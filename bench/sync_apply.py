"""Where the backup's apply time goes: the product's download and apply against plain SQL.

    .venv/bin/python bench/sync_apply.py [--reports 20000]

No sites: one scratch SQLite database (the production settings: WAL,
synchronous=NORMAL) in this process. The primary's side writes a full,
sealed change stream of --reports reports to a file with the product code
(failover.sync.stream.sealed_stream); the backup's side reads it back with
failover.sync.receive.download, which checks each record and converts it to
database values into its spool, as it does from the network. Then, on the
same data:

- apply: failover.sync.receive.apply() of that spool into empty tables
  (what a first full sync does after the download), against a plain
  executemany() INSERT of the stream's rows, converted in the same loop
  (ISO datetimes to SQLite's UTC text, UUIDs to hex) with the table's indexes
  kept, checked to write the same values;
- wipe: failover.sync.receive.wipe() of the full tables (what a full resync
  does before its records), against one DELETE; time, rows it adds to the
  change log, and the process's peak memory (VmHWM) before and after.

With --profile, one more apply runs under cProfile and the functions that
take the most time are printed.

This explains the full-sync and memory benchmarks; it sets no target itself.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
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
from failover.models import ChangeLog, SyncCursor  # noqa: E402
from failover.sync import codec, receive, stream  # noqa: E402
from failover.sync.throttle import Throttle  # noqa: E402


def memory(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


SEAL_KEY = b"sync_apply benchmark seal key 01"


class StreamFile:
    """Stands in for the peer: answers the change-stream request from a file."""

    seal_key = SEAL_KEY

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def stream(self, *_args: object, **_kwargs: object) -> Iterator[StreamFile]:
        yield self

    def chunks(self, size: int) -> Iterator[bytes]:
        with open(self.path, "rb") as stored:
            yield from iter(lambda: stored.read(size), b"")


class Quiet:
    """Stands in for the Redis progress of a run."""

    records = 0
    expected = None

    def add(self, **_kwargs: object) -> None:
        pass

    def set_phase(self, _phase: str) -> None:
        pass

    def publish(self, **_kwargs: object) -> None:
        pass


def write_stream(path: Path) -> None:
    plan = stream.Plan.make(None, None, full_requested=True)
    with open(path, "wb") as out:
        for block in stream.sealed_stream(plan, SEAL_KEY):
            out.write(block)


def download(path: Path, spool: Path) -> receive.Received:
    return receive.download(
        StreamFile(path),
        receive.request_body(SyncCursor.load(), True),
        spool,
        Throttle(None),
        Quiet(),
    )


def empty_reports() -> None:
    Report.objects.all()._raw_delete(Report.objects.db)


def snapshot() -> list[tuple]:
    return list(Report.objects.order_by("id").values_list())


def plain_insert(path: Path) -> None:
    """The stream's report rows through executemany(), converted as Django's SQLite backend
    stores them, into the table with its indexes."""
    fields = codec.REPORT_FIELDS
    columns = ", ".join(field.column for field in fields)
    placeholders = ", ".join("%s" for _ in fields)
    sql = f"INSERT INTO {Report._meta.db_table} ({columns}) VALUES ({placeholders})"  # noqa: S608

    def value(field: object, raw: object) -> object:
        if field.name == "recording":
            return (raw or {}).get("name", "")
        if field.get_internal_type() == "DateTimeField" and raw is not None:
            moment = dt.datetime.fromisoformat(raw)
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            return moment.isoformat(" ")
        if field.get_internal_type() == "UUIDField":
            return raw.replace("-", "")
        return raw

    rows: list[list] = []
    model = None
    with transaction.atomic(), connection.cursor() as cursor, open(path, "rb") as lines:
        for line in lines:
            item = json.loads(line)
            if isinstance(item, dict):
                model = item.get("model")
                continue
            if model != "appliance.report":
                continue
            rows.append([value(field, raw) for field, raw in zip(fields, item, strict=True)])
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
        changes = SCRATCH / "changes.ndjson"
        write_stream(changes)
        fetched = seconds(lambda: download(changes, spool))
        received = download(changes, spool)
        say(
            f"{received.records} records, {mib(changes.stat().st_size)}; "
            f"download (check, convert, spool) {fetched:.2f} s"
        )

        logged_before, peak_before, resident_before = (
            ChangeLog.objects.count(),
            memory("VmHWM"),
            memory("VmRSS"),
        )
        with transaction.atomic():
            wipe = seconds(receive.wipe)
            logged = ChangeLog.objects.count() - logged_before
            transaction.set_rollback(True)
        peak_after = memory("VmHWM")
        with transaction.atomic():
            delete = seconds(lambda: Report.objects.all()._raw_delete(Report.objects.db))
            transaction.set_rollback(True)

        empty_reports()
        apply = seconds(lambda: receive.apply(received, Quiet()))
        applied = snapshot()
        empty_reports()
        plain = seconds(lambda: plain_insert(changes))
        if snapshot() != applied:
            raise SystemExit("the plain INSERT did not write what the product's apply wrote")
        if args.profile:
            empty_reports()
            profile = cProfile.Profile()
            profile.runcall(receive.apply, received, Quiet())
            pstats.Stats(profile).sort_stats("cumulative").print_stats(15)
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)

    print()
    print(f"Data:   {args.reports} reports")
    print(
        f"Apply:  receive.apply {apply:.2f} s ({args.reports / apply:.0f} rows/s); "
        f"plain executemany INSERT {plain:.2f} s ({args.reports / plain:.0f} rows/s); "
        f"the apply takes {apply / plain:.2f}x the plain INSERT's time"
    )
    print(
        f"Wipe:   receive.wipe {wipe:.2f} s, {logged} change-log rows written, peak memory "
        f"{mib(peak_before)} -> {mib(peak_after)} (resident before: {mib(resident_before)}); "
        f"one DELETE {delete:.3f} s"
    )


if __name__ == "__main__":
    main()
