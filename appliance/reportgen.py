"""Realistic fake support-session reports, for demos, load tests and benchmarks.

The same seed and end date give the same reports (names, times, transcripts,
UUIDs), so a benchmark or a sync test can be repeated exactly. Reports are
built lazily and inserted with bulk_create in batches, so a hundred thousand
never sit in memory at once.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections.abc import Iterator
from itertools import islice

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from appliance.models import Report
from appliance.signals import rows_written

DEFAULT_BATCH_SIZE = 2000
SPAN_DAYS = 365

REPRESENTATIVES = [
    "Rita Alvarez", "Tom Becker", "Priya Nair", "Jonas Lindqvist", "Amara Okafor",
    "Chen Wei", "Lucas Moreau", "Fatima Zahra", "Sam O'Neill", "Ingrid Holm",
    "Diego Ramos", "Hannah Schulz", "Kenji Tanaka", "Olivia Brown", "Mateo Rossi",
    "Sofia Novak", "Ahmed Haddad", "Emily Carter", "Nikolai Petrov", "Grace Kim",
]  # fmt: skip
FIRST_NAMES = [
    "Alice", "Ben", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Isla", "Jamal",
    "Katrin", "Leo", "Maya", "Nils", "Oona", "Pablo", "Quinn", "Rosa", "Stefan", "Tara",
    "Umar", "Vera", "Wim", "Xenia", "Yusuf", "Zoe", "Aiko", "Bruno", "Chloe", "Dev",
]  # fmt: skip
LAST_NAMES = [
    "Anders", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ivanova",
    "Jensen", "Kowalski", "Lopez", "Müller", "Nakamura", "Owusu", "Patel", "Quispe", "Rahman",
    "Silva", "Thompson", "Ueda", "Varga", "Walsh", "Yilmaz", "Zhang", "de Vries", "O'Brien",
]  # fmt: skip
COMPUTER_PATTERNS = [
    "LAPTOP-{code}",
    "DESKTOP-{code}",
    "WS-{num:04d}",
    "MBP-{login}",
    "TS-{num:03d}",
]
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# (what the customer reports, what the representative does, how it is put right)
ISSUES = [
    (
        "My VPN client keeps disconnecting every few minutes.",
        ["Let me check the VPN client's log.", "The MTU setting looks off; I'm adjusting it."],
        "The VPN has stayed connected for ten minutes now.",
    ),
    (
        "Outlook asks for my password over and over.",
        ["I'll clear the cached credentials.", "Now I'm re-adding your mail profile."],
        "Outlook is syncing without prompting.",
    ),
    (
        "The printer on the third floor shows as offline.",
        ["I'm removing the old printer queue.", "Reinstalling the driver from the print server."],
        "The test page printed.",
    ),
    (
        "I can't open the shared finance folder.",
        ["Checking your group membership.", "I'm remapping the network drive."],
        "The folder opens and you can save files again.",
    ),
    (
        "My laptop is very slow since this morning's update.",
        ["Let me look at what is using the CPU.", "An indexing job is stuck; restarting it."],
        "CPU use is back to normal.",
    ),
    (
        "The accounting app crashes when I export a report.",
        ["I'm collecting the crash log.", "Repairing the application install."],
        "The export completes now.",
    ),
    (
        "I need the new certificate installed for the intranet.",
        ["Importing the certificate into your store.", "Restarting the browser."],
        "The intranet loads without a warning.",
    ),
]
CLOSINGS = {
    Report.Outcome.RESOLVED: "Glad that's fixed. Anything else I can help with?",
    Report.Outcome.UNRESOLVED: "I couldn't fix it in this session; please call back after your "
    "next restart and quote this session.",
    Report.Outcome.ESCALATED: "I'm passing this to our second-line team; they will contact you "
    "within a day.",
    Report.Outcome.ABANDONED: "Hello? Are you still there?",
}
OUTCOME_WEIGHTS = {
    Report.Outcome.RESOLVED: 70,
    Report.Outcome.UNRESOLVED: 12,
    Report.Outcome.ESCALATED: 10,
    Report.Outcome.ABANDONED: 8,
}
PLACEHOLDER_RECORDING = b"Placeholder session recording written by generate_reports.\n"


def build_reports(
    count: int,
    *,
    seed: int | None = None,
    end: dt.datetime | None = None,
    with_recordings: int = 0,
) -> Iterator[Report]:
    """Yield `count` unsaved reports that started within the year before `end`.

    `end` defaults to today's midnight (UTC) rather than now, so a seeded run
    repeated on the same day gives identical reports. Reports chosen to carry
    a recording get a file name; generate_reports() writes the file.
    """
    if not 0 <= with_recordings <= count:
        raise ValueError(
            f"Cannot give {with_recordings} of {count} reports a recording; "
            f"choose between 0 and {count}."
        )
    rng = random.Random(seed)
    end = end or timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    with_recording = set(rng.sample(range(count), with_recordings))
    outcomes, weights = list(OUTCOME_WEIGHTS), list(OUTCOME_WEIGHTS.values())
    for index in range(count):
        outcome = rng.choices(outcomes, weights)[0]
        report = _build_one(rng, end, outcome)
        if index in with_recording:
            report.recording.name = (
                f"recordings/{report.started_at:%Y/%m}/session-{report.uuid}.rec"
            )
        yield report


def _build_one(rng: random.Random, end: dt.datetime, outcome: str) -> Report:
    representative = rng.choice(REPRESENTATIVES)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    started_at = _start_time(rng, end)
    seconds = _duration_seconds(rng, outcome)
    ended_at = None
    if not (outcome == Report.Outcome.ABANDONED and rng.random() < 0.1):
        ended_at = started_at + dt.timedelta(seconds=seconds)
    computer = _computer_name(rng, first, last)
    return Report(
        uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
        representative=representative,
        customer_name=f"{first} {last}",
        computer_name=computer,
        started_at=started_at,
        ended_at=ended_at,
        outcome=outcome,
        chat_transcript=_transcript(
            rng, representative, first, f"{first} {last}", computer, started_at, seconds, outcome
        ),
    )


def _start_time(rng: random.Random, end: dt.datetime) -> dt.datetime:
    """A time in the last year, mostly on weekdays and in office hours, as support is."""
    earliest = end - dt.timedelta(days=SPAN_DAYS)
    day = end - dt.timedelta(days=rng.randrange(1, SPAN_DAYS + 1))
    if day.weekday() >= 5 and rng.random() < 0.8:
        day -= dt.timedelta(days=day.weekday() - rng.randrange(5))
        if day < earliest:
            day += dt.timedelta(days=7)
    hour = min(max(rng.gauss(13, 3), 6), 21.9)
    midnight = day.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + dt.timedelta(seconds=int(hour * 3600))


def _duration_seconds(rng: random.Random, outcome: str) -> int:
    """Log-normal around 14 minutes (a few minutes if the customer walked away)."""
    median = 3 * 60 if outcome == Report.Outcome.ABANDONED else 14 * 60
    return int(min(max(rng.lognormvariate(math.log(median), 0.7), 60), 4 * 3600))


def _computer_name(rng: random.Random, first: str, last: str) -> str:
    if rng.random() < 0.03:
        return ""
    code = "".join(rng.choices(CODE_ALPHABET, k=7))
    login = (first[0] + last).lower().replace(" ", "").replace("'", "")
    return rng.choice(COMPUTER_PATTERNS).format(code=code, num=rng.randrange(1, 1000), login=login)


def _transcript(
    rng: random.Random,
    representative: str,
    first_name: str,
    customer: str,
    computer: str,
    started_at: dt.datetime,
    seconds: int,
    outcome: str,
) -> str:
    """A chat of a few to a dozen lines whose timestamps fall inside the session."""
    problem, steps, fix = rng.choice(ISSUES)
    rep_first = representative.split()[0]
    lines = [
        (
            "System",
            f"Session started; {customer} connected from {computer or 'an unnamed computer'}.",
        ),
        (representative, f"Hello {first_name}, this is {rep_first} from support. How can I help?"),
        (customer, problem),
    ]
    if outcome == Report.Outcome.ABANDONED:
        lines.append((representative, CLOSINGS[outcome]))
    else:
        lines.append((representative, "May I take control of your screen to have a look?"))
        lines.append((customer, rng.choice(["Yes, go ahead.", "Sure.", "OK, please do."])))
        lines.extend((representative, step) for step in steps)
        if outcome == Report.Outcome.RESOLVED:
            lines.append((representative, fix))
            lines.append(
                (customer, rng.choice(["Great, thank you!", "Perfect, thanks.", "Works!"]))
            )
        lines.append((representative, CLOSINGS[outcome]))
    lines.append(("System", "Session ended."))
    first_second = started_at.hour * 3600 + started_at.minute * 60 + started_at.second
    offsets = [0, *sorted(rng.randrange(seconds) for _ in lines[2:]), seconds]
    return "\n".join(
        f"[{_clock(first_second + offset)}] {who}: {text}"
        for offset, (who, text) in zip(offsets, lines, strict=True)
    )


def _clock(second_of_day: int) -> str:
    """HH:MM:SS by arithmetic: strftime on a datetime per line doubled the generation time."""
    minutes, second = divmod(second_of_day % 86400, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def generate_reports(
    count: int,
    *,
    seed: int | None = None,
    end: dt.datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    with_recordings: int = 0,
) -> int:
    """Create `count` reports in the database and return how many were created.

    Each batch is its own short transaction: on SQLite the web process and the
    worker can still write between batches instead of waiting for the whole run.
    """
    if batch_size < 1:
        raise ValueError(f"The batch size must be at least 1, not {batch_size}.")
    reports = build_reports(count, seed=seed, end=end, with_recordings=with_recordings)
    created = 0
    while batch := list(islice(reports, batch_size)):
        _write_recordings(batch)
        with transaction.atomic():
            Report.objects.bulk_create(batch)
            # bulk_create sends no save signals: announce the new rows (the data sync logs them).
            rows_written.send(sender=Report, keys=[report.pk for report in batch], deleted=False)
        created += len(batch)
    return created


def _write_recordings(batch: list[Report]) -> None:
    """Store a small placeholder file for each report that was given a recording name."""
    for report in batch:
        if report.recording.name:
            stored = default_storage.save(report.recording.name, ContentFile(PLACEHOLDER_RECORDING))
            report.recording.name = stored
