"""The backup's side of a sync: download, verify, then apply all at once.

1. Download the change stream into a spool file, within the bandwidth limit,
   checking its HMAC seal and record count at the end.
2. Fetch the recording files the backup lacks, checking each one's SHA-256.
3. Apply everything in one database transaction, with the new cursor.

A fault before step 3 commits (a killed worker, a cut link, a corrupted
stream) leaves the backup's data exactly as it was: nothing is written to the
database before the whole change set is verified on disk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files.storage import default_storage
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from appliance.models import Report
from failover.models import BackupSettings, FailoverState, Role, SyncCursor, SyncRun
from failover.peer import PeerClient, PeerError
from failover.sync import changelog, codec
from failover.sync.progress import Progress
from failover.sync.stream import FORMAT
from failover.sync.throttle import Throttle

logger = logging.getLogger(__name__)

CHANGES = "/api/peer/v1/sync/changes"
FILE = "/api/peer/v1/sync/file"
READ_SIZE = 16 * 1024
APPLY_BATCH = 1000
MAX_LINE = 64 * 1024 * 1024


class SyncFailed(Exception):
    """A sync could not complete. The backup's data is unchanged."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass
class Received:
    header: dict[str, Any]
    records: int
    spool: Path
    has_recordings: bool = False
    files: dict[str, Path] = field(default_factory=dict)


def spool_root() -> Path:
    return settings.DATA_DIR / "sync"


def pull(run: SyncRun, client: PeerClient) -> Received:
    """Run one sync from the primary into this backup. Raises SyncFailed."""
    state = FailoverState.load()
    if state.role != Role.BACKUP:
        raise SyncFailed(
            f"This site is {state.role}, not a backup: only a backup pulls data.", transient=False
        )
    # Spools of earlier runs that died are of no further use.
    shutil.rmtree(spool_root(), ignore_errors=True)
    spool = spool_root() / f"run-{run.pk}"
    spool.mkdir(parents=True)
    limit = BackupSettings.load().bandwidth_limit
    throttle = Throttle(limit)
    progress = Progress(run.pk)
    try:
        received = _download(
            client, SyncCursor.load(), run.full_requested, spool, throttle, progress
        )
        progress.set_phase("fetching files")
        received.files = _fetch_files(client, received, throttle, progress)
        progress.set_phase("applying")
        removed = _apply(received, progress)
        for name in removed:
            default_storage.delete(name)
        return received
    except PeerError as error:
        # "Not the primary" is passing while the other site is taking the role (the
        # backup's first sync can ask before the primary has committed its own role).
        not_primary = isinstance(error.payload, dict) and error.payload.get("reason") == (
            "not_primary"
        )
        raise SyncFailed(error.message, transient=error.transient or not_primary) from None
    finally:
        run.records, run.bytes, run.files = progress.records, progress.bytes, progress.files
        shutil.rmtree(spool, ignore_errors=True)
        progress.clear()


def _download(
    client: PeerClient,
    cursor: SyncCursor,
    full: bool,
    spool: Path,
    throttle: Throttle,
    progress: Progress,
) -> Received:
    body = {
        "generation": str(cursor.generation) if cursor.generation else None,
        "since": cursor.seq if cursor.generation else None,
        "full": full,
    }
    header: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    records = 0
    has_recordings = False
    progress.set_phase("downloading")
    with (
        client.stream("POST", CHANGES, json=body) as answer,
        open(spool / "changes.ndjson", "wb") as out,
    ):
        seal = hmac.new(answer.seal_key, digestmod=hashlib.sha256)
        pending = b""
        for chunk in answer.chunks(READ_SIZE):
            throttle.consume(len(chunk))
            progress.add(size=len(chunk))
            pending += chunk
            if len(pending) > MAX_LINE:
                raise _corrupt("a line longer than any record")
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if end is not None:
                    raise _corrupt("data after its end")
                item = _parse(line)
                if item.get("type") == "end":
                    end = item
                    continue
                seal.update(line + b"\n")
                if header is None:
                    header = _check_header(item)
                    progress.expected = header.get("expected")
                    continue
                out.write(line + b"\n")
                # A cheap hint, so a sync without recordings skips the files pass.
                has_recordings = has_recordings or b'"recording":{' in line
                records += 1
                progress.add(records=1)
    if pending or header is None or end is None:
        raise SyncFailed(
            "The change stream from the primary ended before its end mark: the connection "
            "was cut. The backup's data is unchanged; the sync will be retried.",
            transient=True,
        )
    if end.get("records") != records or not hmac.compare_digest(
        str(end.get("hmac", "")), seal.hexdigest()
    ):
        raise _corrupt("a seal that does not match its content")
    return Received(header=header, records=records, spool=spool, has_recordings=has_recordings)


def _parse(line: bytes) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except ValueError:
        raise _corrupt("a line that is not JSON") from None
    if not isinstance(item, dict):
        raise _corrupt("a line that is not a record")
    return item


def _check_header(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("type") != "header":
        raise _corrupt("no header")
    if item.get("format") != FORMAT:
        raise SyncFailed(
            f"The primary sends sync format {item.get('format')}; this site reads {FORMAT}. "
            "Run the same software version on both sites.",
            transient=False,
        )
    return item


def _corrupt(what: str) -> SyncFailed:
    return SyncFailed(
        f"The change stream from the primary arrived damaged ({what}); nothing was applied. "
        "The sync will be retried.",
        transient=True,
    )


def _records(received: Received) -> Iterator[dict[str, Any]]:
    with open(received.spool / "changes.ndjson", "rb") as spooled:
        for line in spooled:
            yield json.loads(line)


def _wanted_files(received: Received) -> Iterator[dict[str, Any]]:
    seen = set()
    for record in _records(received):
        if record["op"] != "upsert" or record["model"] != "appliance.report":
            continue
        recording = record["data"].get("recording")
        if not recording or recording["name"] in seen:
            continue
        seen.add(recording["name"])
        if _have(recording):
            continue
        yield recording


def _have(recording: dict[str, Any]) -> bool:
    name = recording["name"]
    return default_storage.exists(name) and default_storage.size(name) == recording["size"]


def _safe_name(name: str) -> str:
    normalised = os.path.normpath(name)
    if normalised.startswith(("/", "..")) or normalised != name:
        raise _corrupt(f"a file name outside the media folder ({name!r})")
    return name


def _fetch_files(
    client: PeerClient, received: Received, throttle: Throttle, progress: Progress
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if not received.has_recordings:
        return files
    folder = received.spool / "files"
    folder.mkdir()
    for recording in _wanted_files(received):
        name = _safe_name(recording["name"])
        target = folder / str(len(files))
        digest, size = hashlib.sha256(), 0
        with client.stream("POST", FILE, json={"name": name}) as answer, open(target, "wb") as out:
            for chunk in answer.chunks(READ_SIZE):
                throttle.consume(len(chunk))
                progress.add(size=len(chunk))
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if size != recording["size"] or digest.hexdigest() != recording["sha256"]:
            raise _corrupt(f"the recording {name} with the wrong content")
        files[name] = target
        progress.add(files=1)
    return files


def _apply(received: Received, progress: Progress) -> list[str]:
    """Apply the verified change set in one transaction. Returns files to remove afterwards."""
    header = received.header
    removed: list[str] = []
    with transaction.atomic(), changelog.paused():
        if header["full"]:
            removed += _wipe()
        permissions = codec.PermissionMap()
        applied = 0
        for model, op, batch in _batches(_records(received)):
            synced = codec.BY_LABEL[model]
            if op == "delete":
                removed += synced.delete(batch)
            else:
                synced.upsert(batch, permissions)
            applied += len(batch)
            progress.records = applied
            progress.publish()
        _place_files(received.files)
        _reset_sequences()
        cursor = SyncCursor.load()
        cursor.generation = header["generation"]
        cursor.seq = header["upto"]
        if header["full"]:
            cursor.last_full_at = timezone.now()
        cursor.save()
    still_used = set(
        Report.objects.filter(recording__in=removed).values_list("recording", flat=True)
    )
    return [name for name in removed if name not in still_used]


def _wipe() -> list[str]:
    """Before a full sync's records: remove every synced row (in the same transaction)."""
    files = list(Report.objects.exclude(recording="").values_list("recording", flat=True))
    Report.objects.all().delete()
    User.objects.all().delete()
    Group.objects.all().delete()
    return files


def _batches(records: Iterator[dict[str, Any]]) -> Iterator[tuple[str, str, list[Any]]]:
    """Consecutive records of one model and operation, at most APPLY_BATCH at a time."""
    batch: list[Any] = []
    current: tuple[str, str] | None = None
    for record in records:
        kind = (record["model"], record["op"])
        if record["model"] not in codec.BY_LABEL or record["op"] not in ("upsert", "delete"):
            raise _corrupt(f"an unknown record {kind}")
        if kind != current or len(batch) >= APPLY_BATCH:
            if batch and current is not None:
                yield (*current, batch)
            batch, current = [], kind
        batch.append(record["data"] if record["op"] == "upsert" else record["key"])
    if batch and current is not None:
        yield (*current, batch)


def _place_files(files: dict[str, Path]) -> None:
    """Move fetched recordings into the media folder before the commit.

    Names are unique per upload, so a new file never replaces one in use; if the
    transaction then fails, the placed files are orphans, not damage.
    """
    media = Path(settings.MEDIA_ROOT)
    for name, source in files.items():
        target = media / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)


def _reset_sequences() -> None:
    """Rows arrive with the primary's ids: move PostgreSQL's id sequences past them."""
    statements = connection.ops.sequence_reset_sql(
        no_style(), [codec_model.model for codec_model in codec.SYNCED]
    )
    if statements:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
