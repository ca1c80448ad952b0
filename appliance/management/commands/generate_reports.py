"""manage.py generate_reports N: fill the database with realistic fake reports."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from appliance.reportgen import DEFAULT_BATCH_SIZE, generate_reports


def _count(text: str) -> int:
    """An argparse type for a whole number of zero or more, with a message that says so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number.") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more.")
    return value


def _day(text: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD.") from None
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


class Command(BaseCommand):
    help = (
        "Create N realistic support-session reports (for demos and load tests). The same "
        "--seed and --end give the same reports."
    )
    # Scripted (demos, benchmarks, tests): the deployment check is not re-run each time.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=_count, help="How many reports to create.")
        parser.add_argument("--seed", type=int, help="Seed for repeatable output.")
        parser.add_argument(
            "--batch-size",
            type=_count,
            default=DEFAULT_BATCH_SIZE,
            help=f"Reports per insert transaction (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--with-recordings",
            type=_count,
            default=0,
            metavar="K",
            help="Give K of the reports a small placeholder recording file.",
        )
        parser.add_argument(
            "--end",
            type=_day,
            help="Reports start within the year before this UTC date (default: today).",
        )

    def handle(self, *args: object, **options: object) -> None:
        count, recordings = options["count"], options["with_recordings"]
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if recordings > count:
            raise CommandError(
                f"--with-recordings {recordings} is more than the {count} reports to create."
            )
        started = time.monotonic()
        try:
            created = generate_reports(
                count,
                seed=options["seed"],
                end=options["end"],
                batch_size=options["batch_size"],
                with_recordings=recordings,
            )
        except IntegrityError as error:
            hint = (
                f" A seeded run repeats its report IDs: --seed {options['seed']} was probably "
                "used on this database before; choose another seed or leave it out."
                if options["seed"] is not None
                else ""
            )
            raise CommandError(f"Could not insert the reports: {error}.{hint}") from error
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {created} reports ({recordings} with a recording) in {elapsed:.1f} s."
            )
        )
