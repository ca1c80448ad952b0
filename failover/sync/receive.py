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

import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import operator
import os
import pickle
import shutil
import uuid
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

from appliance.models import ApiAccount, Report
from failover import compat
from failover.compat import SYNC_FORMATS_READ
from failover.models import (
    BackupSettings,
    FailoverState,
    PendingRecording,
    Role,
    SyncCursor,
    SyncRun,
)
from failover.peer import PeerClient, PeerError
from failover.sync import bulkload, changelog, checks, codec
from failover.sync.progress import Progress
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
# What the header must hold: (name, accepted types, required).
HEADER_FIELDS = (
    ("generation", (str,), False),
    ("full", (bool,), True),
    ("since", (int,), False),
    ("upto", (int,), True),
    ("latest", (int,), False),
    ("next_change_at", (str,), False),
    ("expected", (int,), False),
)
# What a full sync empties before loading the primary's rows.
WIPED = (Report, User, Group, ApiAccount)


class SyncFailed(Exception):
    """A sync could not complete. The backup's data is unchanged."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class RecordRefused(SyncFailed):
    """A record arrived intact but breaks a rule of its model: sending it again cannot help."""

    def __init__(self, refused: checks.InvalidRecord) -> None:
        super().__init__(refused.message, transient=False)
        self.refused = refused


class ColumnsDiffer(SyncFailed):
    """The records of a model come with other columns than this version's: another
    software version wrote them."""

    def __init__(self, label: str, sent: object, expected: list[str]) -> None:
        super().__init__(
            f"The primary sends {label} with the columns {sent}; this site has {expected}, "
            "so nothing was applied. Upgrade the older site (README, Upgrading a pair).",
            transient=False,
        )
        self.label = label
        self.sent = sent
        self.expected = expected


class FormatDiffers(SyncFailed):
    """The change stream is in another sync format than this version reads."""

    def __init__(self, sent: object) -> None:
        oldest, newest = SYNC_FORMATS_READ
        super().__init__(
            f"The primary sends sync format {str(sent)[:20]}; this site reads formats {oldest} "
            f"to {newest}, so nothing was applied. Upgrade the older site (README, Upgrading a "
            "pair).",
            transient=False,
        )
        self.sent = sent


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
        with as_sync_failure():
            received = download(
                client, request_body(SyncCursor.load(), run.full_requested), spool, throttle,
                progress,
            )  # fmt: skip
            progress.set_phase("fetching files")
            received.files = _fetch_files(client, received, throttle, progress)
        progress.set_phase("applying")
        try:
            removed = apply(received, progress)
        finally:
            # Committed: the placed files are in use. Rolled back: they are orphans.
            remove_unapplied_files()
        for name in removed:
            default_storage.delete(name)
        return received
    finally:
        run.records, run.bytes, run.files = progress.records, progress.bytes, progress.files
        shutil.rmtree(spool, ignore_errors=True)


@contextlib.contextmanager
def as_sync_failure() -> Iterator[None]:
    """A failed call to the primary, as the SyncFailed it means for the sync."""
    try:
        yield
    except PeerError as error:
        # "Not the primary" is passing while the other site is taking the role (the
        # backup's first sync can ask before the primary has committed its own role).
        not_primary = isinstance(error.payload, dict) and error.payload.get("reason") == (
            "not_primary"
        )
        raise SyncFailed(error.message, transient=error.transient or not_primary) from None


def request_body(cursor: SyncCursor, full: bool, **extra: object) -> dict[str, object]:
    """What to ask the primary for: the changes after this site's cursor, or everything."""
    return {
        "generation": str(cursor.generation) if cursor.generation else None,
        "since": cursor.seq if cursor.generation else None,
        "full": full,
        "applied_format": cursor.sync_format if cursor.generation else None,
        # What this site reads: a primary that cannot write it refuses before sending.
        "compat": compat.announcement(),
        **extra,
    }


def download(
    client: PeerClient,
    body: dict[str, object],
    spool: Path,
    throttle: Throttle,
    progress: Progress,
) -> Received:
    """Fetch one change set into `spool`, checked line by line and sealed. Raises
    SyncFailed (damaged or cut) or PeerError (the call itself failed)."""
    progress.set_phase("downloading")
    with (
        client.stream("POST", CHANGES, json=body) as answer,
        Receiver(answer.seal_key, spool, progress) as receiver,
    ):
        lines = Lines(MAX_LINE)
        for chunk in answer.chunks(READ_SIZE):
            throttle.consume(len(chunk))
            before = receiver.records
            for line in lines.feed(chunk):
                receiver.take(line)
            progress.add(size=len(chunk), records=receiver.records - before)
        return receiver.finish(lines.rest())


class Lines:
    """Splits a stream of chunks into lines, in time linear in its length.

    Each chunk is searched once, and the pieces of a line that spans chunks are kept
    in a list and joined once, when its newline arrives: appending each chunk to the
    pending bytes and splitting them again copied and scanned a 16 MiB line about a
    thousand times. A line longer than `limit` is refused as soon as it passes it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pieces: list[bytes] = []
        self.size = 0

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            piece = chunk[start:end]
            if self.pieces:
                self._keep(piece)
                piece = b"".join(self.pieces)
                self.pieces, self.size = [], 0
            elif len(piece) > self.limit:
                raise _corrupt("a line longer than any record")
            yield piece
            start = end + 1
        if start < len(chunk):
            self._keep(chunk[start:])

    def _keep(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.limit:
            raise _corrupt("a line longer than any record")
        self.pieces.append(piece)

    def rest(self) -> bytes:
        """What followed the last newline (nothing, in a complete stream)."""
        return b"".join(self.pieces)


class Receiver:
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
        self.checks: list[checks.Check] = []
        self.batch: list[Any] = []
        self.op = ""
        self._seen: set[str] = set()
        self._out: BinaryIO
        self._recordings_out: BinaryIO

    def __enter__(self) -> Receiver:
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
            raise ColumnsDiffer(synced.label, item.get("columns"), synced.columns)
        self.synced = synced
        self.converters = synced.converters(self.database)
        self.checks = synced.column_checks()

    def _upsert(self, row: Any) -> None:
        synced = self.synced
        if synced is None or type(row) is not list or len(row) != len(self.converters):
            raise _corrupt("a record that does not fit its model's columns")
        # Every value of a full sync is checked: the loop is map's, the reasons found after.
        if any(map(operator.call, self.checks, row)):
            raise _invalid(checks.first_refused(synced.label, self.checks, synced.columns, row))
        recording = synced.recording(row)
        if recording is not None:
            self._note(recording)
        try:
            values = [convert(value) for convert, value in zip(self.converters, row, strict=True)]
        except (ValueError, TypeError, ValidationError, OverflowError):
            raise _invalid(_unconvertible(synced, self.converters, row)) from None
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
            check_spool(self._out.tell() + self._recordings_out.tell(), "the records")
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
    oldest, newest = SYNC_FORMATS_READ
    if type(item.get("format")) is not int or not oldest <= item["format"] <= newest:
        raise FormatDiffers(item.get("format"))
    for name, kinds, required in HEADER_FIELDS:
        value = item.get(name)
        if (value is None and required) or (value is not None and type(value) not in kinds):
            raise _corrupt(f"a header whose {name} is not a {kinds[0].__name__}")
    if item["upto"] < 0 or (item["since"] is not None and item["since"] < 0):
        raise _corrupt("a header with a negative cursor")
    try:
        if item["generation"] is not None:
            uuid.UUID(item["generation"])
        if item.get("next_change_at") is not None:
            dt.datetime.fromisoformat(item["next_change_at"])
    except ValueError:
        raise _corrupt("a header with an unreadable generation or time") from None
    return item


def _unconvertible(
    synced: codec.Synced, converters: list[codec.Convert], row: list[Any]
) -> checks.InvalidRecord:
    """Which column of `row` its converter refuses, and why (only once one has)."""
    for convert, column, value in zip(converters, synced.columns, row, strict=True):
        try:
            convert(value)
        except (ValueError, TypeError, ValidationError, OverflowError) as error:
            reason = " ".join(getattr(error, "messages", [str(error)]))
            return checks.InvalidRecord(synced.label, row[0], column, reason)
    return checks.InvalidRecord(synced.label, row[0], "values", "They cannot be stored.")


def _invalid(error: checks.InvalidRecord) -> RecordRefused:
    """A record that arrived intact but breaks its model's rules: retrying sends it again."""
    return RecordRefused(error)


def _corrupt(what: str) -> SyncFailed:
    return SyncFailed(
        f"The change stream from the primary arrived damaged ({what}); nothing was applied. "
        "The sync will be retried.",
        transient=True,
    )


def spooled(received: Received) -> Iterator[tuple[str, str, list[Any]]]:
    """The batches the download spooled: (model label, "upsert" or "delete", rows or keys)."""
    with open(received.spool / RECORDS, "rb") as spooled:
        while True:
            try:
                # This run's own file, written by Receiver moments ago (see there).
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


def safe_name(name: str) -> str:
    normalised = os.path.normpath(name)
    if normalised.startswith(("/", "..")) or normalised != name:
        raise _corrupt(f"a file name outside the media folder ({name!r})")
    return name


def check_spool(size: int, what: str) -> None:
    """Refuse a sync whose spool would pass SYNC_SPOOL_MAX_BYTES (nothing is applied)."""
    limit = settings.SYNC_SPOOL_MAX_BYTES
    if size > limit:
        raise SyncFailed(
            f"The sync needs {size} bytes on this site's disk for {what}, more than "
            f"SYNC_SPOOL_MAX_BYTES ({limit}); nothing was applied. Raise the setting if this "
            "much data is expected.",
            transient=False,
        )


def _spool_size(received: Received) -> int:
    return sum((received.spool / name).stat().st_size for name in (RECORDS, RECORDINGS))


def _fetch_files(
    client: PeerClient, received: Received, throttle: Throttle, progress: Progress
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if not received.recordings:
        return files
    wanted = list(_wanted_files(received))
    check_spool(
        _spool_size(received) + sum(recording["size"] for recording in wanted),
        f"the records and {len(wanted)} recording(s)",
    )
    folder = received.spool / "files"
    folder.mkdir()
    for recording in wanted:
        name = safe_name(recording["name"])
        target = folder / str(len(files))
        with client.stream("POST", FILE, json={"name": name}) as answer:
            _receive_file(answer, target, recording, throttle, progress)
        files[name] = target
        progress.add(files=1)
    return files


def _receive_file(
    answer: Any,
    target: Path,
    recording: dict[str, Any],
    throttle: Throttle,
    progress: Progress | None = None,
) -> None:
    """Write one recording to `target`, checking its size as it comes and its SHA-256 at
    the end. A recording longer than announced is cut off at once and refused."""
    name, announced = recording["name"], recording["size"]
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        for chunk in answer.chunks(READ_SIZE):
            size += len(chunk)
            if size > announced:
                raise SyncFailed(
                    f"The primary sent more of the recording {name} than the {announced} "
                    "bytes its report announces; the transfer was cut off and nothing was "
                    "applied.",
                    transient=False,
                )
            throttle.consume(len(chunk))
            if progress is not None:
                progress.add(size=len(chunk))
            digest.update(chunk)
            out.write(chunk)
    if size != announced or digest.hexdigest() != recording["sha256"]:
        raise _corrupt(f"the recording {name} with the wrong content")


def apply(received: Received, progress: Progress, *, files_follow: bool = False) -> list[str]:
    """Apply the verified change set in one transaction. Returns files to remove afterwards.

    The cursor moves in the same transaction. An incremental change set applies only
    to the cursor it was asked for: if another sync or replication batch moved the
    cursor meanwhile, nothing is applied (transient; the next request starts from
    the new cursor). With `files_follow` (continuous replication) the rows do not
    wait for their recordings: those are noted as pending and fetched after the commit.
    """
    header = received.header
    removed: list[str] = []
    # A full sync empties the tables and loads them: their indexes are built once, at the end.
    reindexed = list(WIPED) if header["full"] else []
    with (
        transaction.atomic(),
        changelog.paused(),
        bulkload.indexes_built_afterwards(reindexed),
    ):
        cursor = SyncCursor.objects.select_for_update().filter(pk=1).first() or SyncCursor(pk=1)
        if not header["full"] and (str(cursor.generation), cursor.seq) != (
            str(header["generation"]),
            header["since"],
        ):
            raise SyncFailed(
                f"This site's cursor moved from {header['since']} to {cursor.seq} while the "
                "change set was on its way (another sync applied first); nothing was applied.",
                transient=True,
            )
        if header["full"]:
            removed += wipe()
        permissions = codec.PermissionMap()
        applied = 0
        for model, op, batch in spooled(received):
            synced = codec.BY_LABEL[model]
            if op == "delete":
                removed += synced.delete(batch)
            else:
                synced.upsert(batch, permissions)
            applied += len(batch)
            progress.records = applied
            progress.publish()
        place_files(received.files)
        if files_follow:
            _note_pending(received)
        reset_sequences()
        now = timezone.now()
        cursor.generation = header["generation"]
        cursor.seq = header["upto"]
        cursor.sync_format = header["format"]
        if header["full"]:
            cursor.last_full_at = now
        cursor.applied_at = cursor.contact_at = now
        note_primary_log(cursor, header)
        cursor.save()
    still_used = set(
        Report.objects.filter(recording__in=removed).values_list("recording", flat=True)
    )
    return [name for name in removed if name not in still_used]


def note_primary_log(cursor: SyncCursor, header: dict[str, Any]) -> None:
    """What the change set said of the primary's log: its last change, and when the
    first change after this set was made (the lag reads from these)."""
    latest = int(header.get("latest") or header["upto"])
    cursor.primary_latest = max(latest, header["upto"])
    following = header.get("next_change_at")
    cursor.pending_since = (
        dt.datetime.fromisoformat(following) if following and header["upto"] < latest else None
    )


def _note_pending(received: Received) -> None:
    """The recordings this change set names and this site lacks: fetched after the commit."""
    PendingRecording.objects.bulk_create(
        [
            PendingRecording(name=safe_name(r["name"]), size=r["size"], sha256=r["sha256"])
            for r in _wanted_files(received)
        ],
        ignore_conflicts=True,
    )


def fetch_pending(client: PeerClient, throttle: Throttle, *, limit: int = 20) -> tuple[int, int]:
    """Fetch recordings that arrived without their file (continuous replication), oldest
    first; (fetched, still pending). A file no report uses any more is dropped."""
    folder = settings.DATA_DIR / "replication-files"
    folder.mkdir(parents=True, exist_ok=True)
    fetched = 0
    for pending in PendingRecording.objects.order_by("created_at", "id")[:limit]:
        used = Report.objects.filter(recording=pending.name).exists()
        if used and not _have({"name": pending.name, "size": pending.size}):
            target = folder / "incoming"
            recording = {"name": pending.name, "size": pending.size, "sha256": pending.sha256}
            check_spool(pending.size, f"the recording {pending.name}")
            with client.stream("POST", FILE, json={"name": pending.name}) as answer:
                _receive_file(answer, target, recording, throttle)
            placed = Path(settings.MEDIA_ROOT) / pending.name
            placed.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(target, placed)
            fetched += 1
        pending.delete()
    return fetched, PendingRecording.objects.count()


def wipe() -> list[str]:
    """Before a full sync's records: remove every synced row (in the same transaction)."""
    files = list(Report.objects.exclude(recording="").values_list("recording", flat=True))
    for model in WIPED:
        model.objects.all().delete()
    return files


def placing_journal() -> Path:
    return settings.DATA_DIR / "sync-placing.json"


def place_files(files: dict[str, Path]) -> None:
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


def reset_sequences() -> None:
    """Rows arrive with the primary's ids: move PostgreSQL's id sequences past them."""
    statements = connection.ops.sequence_reset_sql(
        no_style(), [codec_model.model for codec_model in codec.SYNCED]
    )
    if statements:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
