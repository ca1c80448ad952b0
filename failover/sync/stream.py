"""The primary's side of a sync: the change set as a sealed NDJSON stream.

Line 1 is a header (generation, cursor range, full or incremental, how many
keys to expect). Then one line per record, `upsert` with the row as it is now
or `delete` with its key, model by model in dependency order. The last line
carries the record count and an HMAC-SHA256 over every byte before it, keyed
for this one request, so the backup can tell a complete, untouched stream from
anything else.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max

from failover.models import ChangeLog, SyncSource
from failover.sync.codec import SYNCED, Synced

FORMAT = 1
CHUNK = 500


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


class _Encoder(DjangoJSONEncoder):
    """Django's encoder, but times keep their microseconds (it rounds to milliseconds)."""

    def default(self, o: object) -> object:
        if isinstance(o, dt.datetime | dt.time):
            return o.isoformat()
        return super().default(o)


def _line(value: dict) -> bytes:
    return json.dumps(value, cls=_Encoder, separators=(",", ":")).encode() + b"\n"


def records(plan: Plan) -> Iterator[dict]:
    """Every record of the plan, model by model."""
    for synced in SYNCED:
        if plan.full:
            for obj in synced.queryset().order_by("pk").iterator(CHUNK):
                yield {"op": "upsert", "model": synced.label, "data": synced.dump(obj)}
            continue
        batch: list[int] = []
        for key in plan.changed_keys(synced):
            batch.append(key)
            if len(batch) >= CHUNK:
                yield from _changed(synced, batch)
                batch = []
        yield from _changed(synced, batch)


def _changed(synced: Synced, keys: list[int]) -> Iterator[dict]:
    if not keys:
        return
    present = {obj.pk: obj for obj in synced.queryset().filter(pk__in=keys)}
    for key in keys:
        if key in present:
            yield {"op": "upsert", "model": synced.label, "data": synced.dump(present[key])}
        else:
            yield {"op": "delete", "model": synced.label, "key": key}


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
    buffer: list[bytes] = []
    for record in records(plan):
        line = _line(record)
        mac.update(line)
        buffer.append(line)
        count += 1
        if len(buffer) >= 100:
            yield b"".join(buffer)
            buffer = []
    if buffer:
        yield b"".join(buffer)
    yield _line({"type": "end", "records": count, "hmac": mac.hexdigest()})
