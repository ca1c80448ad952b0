"""The primary's side of a sync: the change set as a sealed NDJSON stream.

Line 1 is a header (generation, cursor range, full or incremental, how many
keys to expect). Then, model by model in dependency order, a line naming the
model and its columns, followed by its records: an upsert is a JSON array of
the row's values as it is now, in those columns' order; a delete is an object
with the key. The last line carries the record count and an HMAC-SHA256 over
every byte before it, keyed for this one request, so the backup can tell a
complete, untouched stream from anything else.

Lines are written with orjson: it turns a row of values (datetimes and UUIDs
included) into JSON several times faster than the standard library's encoder,
which was a third of the primary's time in a full sync.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from typing import Any
from uuid import UUID

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max

from failover.models import ChangeLog, SyncSource
from failover.sync.codec import SYNCED, Synced

FORMAT = 2
# Keys of an incremental change set looked up at a time.
CHUNK = 500
BLOCK = 64 * 1024


@dataclass(frozen=True)
class Plan:
    """What one stream will contain: everything (full) or the changes in (since, upto]."""

    generation: UUID
    full: bool
    since: int
    upto: int

    @classmethod
    def make(cls, generation: str | None, since: int | None, full_requested: bool) -> Plan:
        source = SyncSource.load()
        upto = ChangeLog.objects.aggregate(last=Max("id"))["last"] or 0
        known = generation is not None and str(source.generation) == str(generation)
        usable = known and since is not None and source.horizon <= since <= upto
        full = full_requested or not usable
        return cls(source.generation, full, 0 if full else int(since or 0), upto)

    def changed_keys(self, synced: Synced) -> Iterator[int]:
        changes = ChangeLog.objects.filter(model=synced.label, id__gt=self.since, id__lte=self.upto)
        yield from (
            changes.values_list("key", flat=True).distinct().order_by("key").iterator(CHUNK)
        )

    def expected(self) -> int:
        """How many records the stream will hold, for the progress view (approximate)."""
        if self.full:
            return sum(synced.model.objects.count() for synced in SYNCED)
        changes = ChangeLog.objects.filter(id__gt=self.since, id__lte=self.upto)
        return changes.values("model", "key").distinct().count()


def _fallback(value: object) -> object:
    """What orjson does not encode by itself (a Decimal, a lazy string): as Django would."""
    return DjangoJSONEncoder().default(value)


def _line(value: Any) -> bytes:
    """One NDJSON line. Times keep their microseconds (Django's encoder drops them)."""
    return orjson.dumps(value, default=_fallback, option=orjson.OPT_APPEND_NEWLINE)


def lines(plan: Plan) -> Iterator[tuple[bytes, int]]:
    """Every line between header and end, with the records it holds (0 or 1).

    Model by model: the line naming the model and its columns, then its records.
    """
    for synced in SYNCED:
        yield _line({"type": "model", "model": synced.label, "columns": synced.columns}), 0
        if plan.full:
            for row in synced.rows():
                yield _line(row), 1
            continue
        batch: list[int] = []
        for key in plan.changed_keys(synced):
            batch.append(key)
            if len(batch) >= CHUNK:
                yield from _changed(synced, batch)
                batch = []
        yield from _changed(synced, batch)


def _changed(synced: Synced, keys: list[int]) -> Iterator[tuple[bytes, int]]:
    if not keys:
        return
    present = {row[0]: row for row in synced.rows(keys)}
    for key in keys:
        if key in present:
            yield _line(present[key]), 1
        else:
            yield _line({"type": "delete", "key": key}), 1


def sealed_stream(plan: Plan, seal_key: bytes) -> Iterator[bytes]:
    """The plan as NDJSON lines, ending with the count and the HMAC of all that came before."""
    mac = hmac.new(seal_key, digestmod=sha256)
    header = _line(
        {
            "type": "header",
            "format": FORMAT,
            "generation": plan.generation,
            "full": plan.full,
            "since": plan.since,
            "upto": plan.upto,
            "expected": plan.expected(),
        }
    )
    mac.update(header)
    yield header
    count = 0
    # Sent in blocks of about 64 KiB: a write per line would cost more than the line.
    buffer: list[bytes] = []
    size = 0
    for piece, records in lines(plan):
        count += records
        buffer.append(piece)
        size += len(piece)
        if size >= BLOCK:
            block = b"".join(buffer)
            mac.update(block)
            yield block
            buffer, size = [], 0
    if buffer:
        block = b"".join(buffer)
        mac.update(block)
        yield block
    yield _line({"type": "end", "records": count, "hmac": mac.hexdigest()})
