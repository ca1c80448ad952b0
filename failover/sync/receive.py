"""The backup's side of a sync: download and check, then apply all at once.

1. Download the change stream within the bandwidth limit. Each record is
   parsed, checked against its model's columns and converted to the values
   the database stores as it arrives, so this work overlaps the primary's
   sending; the converted records go to a spool file. At the end, the
   stream's HMAC seal and record count must match.
2. Fetch the recording files the backup lacks, checking each one's SHA-256.
3. Apply everything in one database transaction, with the new cursor.

A fault before step 3 commits (a killed worker, a cut link, a corrupted
stream) leaves the backup's data exactly as it was: nothing is written to the
database before the whole change set is verified on disk. The download holds
no database lock, however long a bandwidth limit makes it last.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from appliance.models import Report
from failover.models import BackupSettings, FailoverState, Role, SyncCursor, SyncRun
from failover.peer import PeerClient, PeerError
from failover.sync import bulkload, changelog, codec
from failover.sync.progress import Progress
from failover.sync.stream import FORMAT
from failover.sync.throttle import Throttle

logger = logging.getLogger(__name__)

CHANGES = "/api/peer/v1/sync/changes"
FILE = "/api/peer/v1/sync/file"
READ_SIZE = 16 * 1024
APPLY_BATCH = 2000
MAX_LINE = 64 * 1024 * 1024
# In the spool folder: the converted records, and the recordings they name.
RECORDS = "records.pickle"
RECORDINGS = "recordings.ndjson"
# What a full sync empties before loading the primary's rows.
WIPED = (Report, User, Group)


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
    recordings: int = 0
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
    # Spools of earlier runs that died are of no further use, nor are the files a
    # run placed before dying ahead of its commit.
    shutil.rmtree(spool_root(), ignore_errors=True)
    remove_unapplied_files()
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
        try:
            removed = _apply(received, progress)
        finally:
            # Committed: the placed files are in use. Rolled back: they are orphans.
            remove_unapplied_files()
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
    progress.set_phase("downloading")
    with (
        client.stream("POST", CHANGES, json=body) as answer,
        _Receiver(answer.seal_key, spool, progress) as receiver,
    ):
        pending = b""
        for chunk in answer.chunks(READ_SIZE):
            throttle.consume(len(chunk))
            pending += chunk
            if len(pending) > MAX_LINE:
                raise _corrupt("a line longer than any record")
            *lines, pending = pending.split(b"\n")
            before = receiver.records
            for line in lines:
                receiver.take(line)
            progress.add(size=len(chunk), records=receiver.records - before)
        return receiver.finish(pending)


class _Receiver:
    """Reads the change stream line by line: checks it, converts it, spools it.

    Records are converted to database values here, while the download goes on,
    and written to the spool in batches of APPLY_BATCH, so that the apply only
    has to write them. The spool holds this run's own Python values, pickled:
    it is a file of this process, in this site's data folder, never the peer's
    bytes as such. Recordings named by reports go to a second file, for the
    files pass.
    """

    def __init__(self, seal_key: bytes, spool: Path, progress: Progress) -> None:
        self.seal = hmac.new(seal_key, digestmod=hashlib.sha256)
        self.spool = spool
        self.progress = progress
        self.database = connections[DEFAULT_DB_ALIAS]
        self.header: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.records = 0
        self.recordings = 0
        self.synced: codec.Synced | None = None
        self.converters: list[codec.Convert] = []
        self.batch: list[Any] = []
        self.op = ""
        self._seen: set[str] = set()
        self._out: BinaryIO
        self._recordings_out: BinaryIO

    def __enter__(self) -> _Receiver:
        self._out = open(self.spool / RECORDS, "wb")
        self._recordings_out = open(self.spool / RECORDINGS, "wb")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._out.close()
        self._recordings_out.close()

    def take(self, line: bytes) -> None:
        """One line of the stream, without its newline."""
        if self.end is not None:
            raise _corrupt("data after its end")
        if line[:1] == b"[":
            self.seal.update(line + b"\n")
            self._upsert(_decode(line))
            return
        item = _decode(line)
        if not isinstance(item, dict):
            raise _corrupt("a line that is not a record")
        kind = item.get("type")
        if kind == "end":
            self.end = item
            return
        self.seal.update(line + b"\n")
        if self.header is None:
            self.header = _check_header(item)
            self.progress.expected = self.header.get("expected")
        elif kind == "model":
            self._start_model(item)
        elif kind == "delete" and self.synced is not None and type(item.get("key")) is int:
            self._add("delete", item["key"])
        else:
            raise _corrupt(f"an unexpected line of type {str(kind)[:40]!r}")

    def _start_model(self, item: dict[str, Any]) -> None:
        self._flush()
        synced = codec.BY_LABEL.get(item.get("model"))
        if synced is None:
            raise _corrupt(f"an unknown model {str(item.get('model'))[:60]!r}")
        if item.get("columns") != synced.columns:
            raise SyncFailed(
                f"The primary sends {synced.label} with the columns {item.get('columns')}; "
                f"this site has {synced.columns}. Run the same software version on both sites.",
                transient=False,
            )
        self.synced = synced
        self.converters = synced.converters(self.database)

    def _upsert(self, row: Any) -> None:
        synced = self.synced
        if synced is None or type(row) is not list or len(row) != len(self.converters):
            raise _corrupt("a record that does not fit its model's columns")
        recording = synced.recording(row)
        if recording is not None:
            self._note(recording)
        try:
            values = [convert(value) for convert, value in zip(self.converters, row, strict=True)]
        except (ValueError, TypeError, ValidationError):
            raise _corrupt(f"a {synced.label} record with a value its column cannot hold") from None
        self._add("upsert", values)

    def _note(self, recording: dict[str, Any]) -> None:
        """Keep a recording's name, size and checksum for the files pass (once per name)."""
        name, size, sha256 = recording.get("name"), recording.get("size"), recording.get("sha256")
        if type(name) is not str or type(size) is not int or type(sha256) is not str:
            raise _corrupt("a recording without its name, size and checksum")
        if name in self._seen:
            return
        self._seen.add(name)
        self._recordings_out.write(orjson.dumps(recording, option=orjson.OPT_APPEND_NEWLINE))
        self.recordings += 1

    def _add(self, op: str, value: Any) -> None:
        if op != self.op or len(self.batch) >= APPLY_BATCH:
            self._flush()
            self.op = op
        self.batch.append(value)
        self.records += 1

    def _flush(self) -> None:
        if self.batch and self.synced is not None:
            pickle.dump(
                (self.synced.label, self.op, self.batch), self._out, pickle.HIGHEST_PROTOCOL
            )
        self.batch = []

    def finish(self, pending: bytes) -> Received:
        """After the last chunk: the stream must have ended with a matching seal and count."""
        self._flush()
        if pending or self.header is None or self.end is None:
            raise SyncFailed(
                "The change stream from the primary ended before its end mark: the connection "
                "was cut. The backup's data is unchanged; the sync will be retried.",
                transient=True,
            )
        if self.end.get("records") != self.records or not hmac.compare_digest(
            str(self.end.get("hmac", "")), self.seal.hexdigest()
        ):
            raise _corrupt("a seal that does not match its content")
        return Received(
            header=self.header,
            records=self.records,
            spool=self.spool,
            recordings=self.recordings,
        )


def _decode(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        raise _corrupt("a line that is not JSON") from None


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


def _spooled(received: Received) -> Iterator[tuple[str, str, list[Any]]]:
    """The batches the download spooled: (model label, "upsert" or "delete", rows or keys)."""
    with open(received.spool / RECORDS, "rb") as spooled:
        while True:
            try:
                # This run's own file, written by _Receiver moments ago (see there).
                yield pickle.load(spooled)  # noqa: S301
            except EOFError:
                return


def _wanted_files(received: Received) -> Iterator[dict[str, Any]]:
    with open(received.spool / RECORDINGS, "rb") as named:
        for line in named:
            recording = orjson.loads(line)
            if not _have(recording):
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
    if not received.recordings:
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
    # A full sync empties the tables and loads them: their indexes are built once, at the end.
    reindexed = list(WIPED) if header["full"] else []
    with (
        transaction.atomic(),
        changelog.paused(),
        bulkload.indexes_built_afterwards(reindexed),
    ):
        if header["full"]:
            removed += _wipe()
        permissions = codec.PermissionMap()
        applied = 0
        for model, op, batch in _spooled(received):
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
    for model in WIPED:
        model.objects.all().delete()
    return files


def placing_journal() -> Path:
    return settings.DATA_DIR / "sync-placing.json"


def _place_files(files: dict[str, Path]) -> None:
    """Move fetched recordings into the media folder before the commit.

    Names are unique per upload, so a new file never replaces one in use. Their
    names go to a journal first: if the transaction then fails, or the worker
    dies before the commit, `remove_unapplied_files` takes away those that no
    report uses, and the backup's files are as they were.
    """
    media = Path(settings.MEDIA_ROOT)
    if files:
        journal = placing_journal()
        journal.write_bytes(orjson.dumps(sorted(files)))
        with open(journal, "rb") as written:
            os.fsync(written.fileno())
    for name, source in files.items():
        target = media / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)


def remove_unapplied_files() -> list[str]:
    """Remove the files a sync placed whose reports were never committed. Returns them.

    Reads only the journal of the last placement, so it costs what that sync
    brought, not what the backup holds.
    """
    journal = placing_journal()
    try:
        names = orjson.loads(journal.read_bytes())
    except FileNotFoundError:
        return []
    except orjson.JSONDecodeError:
        # Cut short while being written: no file had been placed yet.
        journal.unlink()
        return []
    used = set(Report.objects.filter(recording__in=names).values_list("recording", flat=True))
    orphans = [name for name in names if name not in used]
    for name in orphans:
        default_storage.delete(name)
    if orphans:
        logger.info("removed %d recording file(s) of a sync that did not commit", len(orphans))
    journal.unlink()
    return orphans


def _reset_sequences() -> None:
    """Rows arrive with the primary's ids: move PostgreSQL's id sequences past them."""
    statements = connection.ops.sequence_reset_sql(
        no_style(), [codec_model.model for codec_model in codec.SYNCED]
    )
    if statements:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
