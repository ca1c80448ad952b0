"""Backup and restore of a site: its data in one verified file, and back.

The file is a gzip-compressed tar stream, written and read member by member,
so neither side holds more than a block of it in memory:

- `backup.json` first: the backup format, the software version, the site, when.
  A reader refuses a format newer than its own before reading anything else.
- `records/000001.ndjson`, ...: the data sync's own full change stream (site
  settings, groups, users with their password hashes, permissions and API
  tokens, API accounts with their credentials, reports), the same lines a
  backup site receives, cut into members of at most RECORDS_MEMBER bytes.
- `files/<name>`: each recording a report names, under its stored name.
- `manifest.json` last: the counts per model and each member's size and SHA-256.

A restore stages every member on disk and checks it against the manifest
before it reads a record; then converts the records as a sync does, and
applies them in one transaction that first empties the site's data. Files are
moved into place just before it, journaled (those of the same name that they
replace are kept aside until the commit), so any failure leaves the site as it
was, and a restore killed before its commit is undone at the next start or
restore (`recover_interrupted_restore`). Not in the file: the pre-shared key, the failover
settings, the TLS material: they belong to the machine and the pair.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import tarfile
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from appliance.models import AuditEvent, Report
from appliance.version import SOFTWARE_VERSION
from failover import schedule
from failover.compat import SYNC_FORMATS_READ
from failover.models import ChangeLog, FailoverEvent, FailoverState, ScheduledBackup, SyncSource
from failover.sync import bulkload, changelog, codec, receive
from failover.sync.progress import Silent
from failover.sync.stream import Plan, sealed_stream

# Raise when the file's layout changes in a way an older reader cannot follow.
FORMAT = 1
KIND = "appliance-failover site backup"
HEAD = "backup.json"
MANIFEST = "manifest.json"
RECORDS_PREFIX = "records/"
FILES_PREFIX = "files/"
# The sync stream's seal keyed with a constant: here it marks the stream's end and
# counts its records; the manifest's SHA-256 sums are what vouch for the content.
SEAL_KEY = b"appliance-failover site backup"
# Small members keep the buffer small: with 8 MiB ones the peak grew with the site
# (glibc serves repeated large allocations from a heap that fragments).
RECORDS_MEMBER = 256 * 1024
READ_SIZE = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE
COMPRESS_LEVEL = 3
# A backup's name: the site, the UTC time to the microsecond, and a counter after the
# first when that name is taken. Pruning reads these back: a file it deletes has this
# site's name exactly (not another's that begins like it).
FILE_NAME = "site-backup-{site}-{at:%Y%m%d-%H%M%S-%f}{counter}.tar.gz"
FILE_NAME_PATTERN = r"site-backup-{site}-(\d{{8}})-(\d{{6}})(?:-(\d{{6}}))?(?:-(\d+))?\.tar\.gz"
# How many taken names a backup tries before it gives up.
NAME_ATTEMPTS = 100

logger = logging.getLogger(__name__)


class RestoreRefused(Exception):
    """A restore did not happen. The site is exactly as it was."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Summary:
    """What a backup holds (or a restore loaded): records per model, files, bytes."""

    counts: dict[str, int]
    files: int
    size: int = 0
    version: str = SOFTWARE_VERSION
    site: str = ""
    created_at: str = ""

    def describe(self) -> str:
        counts = self.counts
        return (
            f"{counts.get('auth.user', 0)} user(s), {counts.get('auth.group', 0)} group(s), "
            f"{counts.get('appliance.apiaccount', 0)} API account(s), "
            f"{counts.get('appliance.report', 0)} report(s), {self.files} recording(s)"
        )


def file_name(at: dt.datetime | None = None, counter: int = 1) -> str:
    """The name a backup of this site takes: site name, UTC time, and the counter after
    the first (`counter` 2, 3, ... when two backups share a microsecond)."""
    at = (at or timezone.now()).astimezone(dt.UTC)
    return FILE_NAME.format(
        site=settings.APPLIANCE_NAME, at=at, counter=f"-{counter}" if counter > 1 else ""
    )


# Writing ------------------------------------------------------------------------------


def _header(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o600
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


class Backup:
    """One backup of this site, as the bytes of its file (iterate once).

    Members are noted (name, size, SHA-256) as they are written, for the manifest;
    once the bytes are all out, `manifest` is what the file's last member says.
    """

    def __init__(self) -> None:
        self.created_at = timezone.now()
        self.head = {
            "type": KIND,
            "format": FORMAT,
            "version": SOFTWARE_VERSION,
            "site": settings.APPLIANCE_NAME,
            "created_at": self.created_at.isoformat(),
        }
        self.members: list[dict[str, Any]] = []
        self.manifest: dict[str, Any] = {}
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in _compressed(self._tar()):
            self.size += len(piece)
            yield piece

    def summary(self) -> Summary:
        return Summary(
            counts=self.manifest["counts"],
            files=self.manifest["files"],
            size=self.size,
            site=self.head["site"],
            created_at=self.head["created_at"],
        )

    def _tar(self) -> Iterator[bytes]:
        yield from self._snapshot()
        yield b"\0" * (2 * BLOCK)

    def _snapshot(self) -> Iterator[bytes]:
        """Every member, read in one transaction: the file is one moment of the site's data."""
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost and connection.vendor == "postgresql":
                # The default (read committed) would let rows change between two queries.
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield from self._members()

    def _members(self) -> Iterator[bytes]:
        counts = {synced.label: synced.model.objects.count() for synced in codec.SYNCED}
        yield from self._member(HEAD, orjson.dumps(self.head))
        plan = Plan(uuid.uuid4(), full=True, since=0, upto=0)
        pending: list[bytes] = []
        size = parts = 0
        for block in sealed_stream(plan, SEAL_KEY):
            pending.append(block)
            size += len(block)
            if size >= RECORDS_MEMBER:
                parts += 1
                yield from self._member(f"{RECORDS_PREFIX}{parts:06d}.ndjson", b"".join(pending))
                pending, size = [], 0
        parts += 1
        yield from self._member(f"{RECORDS_PREFIX}{parts:06d}.ndjson", b"".join(pending))
        names = (
            Report.objects.exclude(recording="")
            .order_by("recording")
            .values_list("recording", flat=True)
            .distinct()
        )
        files = 0
        for name in names.iterator():
            if default_storage.exists(name):
                yield from self._file_member(FILES_PREFIX + name, name)
                files += 1
        self.manifest = {**self.head, "counts": counts, "files": files, "members": self.members}
        yield from self._member(MANIFEST, orjson.dumps(self.manifest, option=orjson.OPT_INDENT_2))

    def _member(self, name: str, data: bytes) -> Iterator[bytes]:
        self.members.append(_noted(name, data))
        yield _header(name, len(data), self.created_at.timestamp())
        yield data
        yield _padding(len(data))

    def _file_member(self, name: str, stored: str) -> Iterator[bytes]:
        """A stored file, read in chunks; its size is taken when it is opened."""
        with default_storage.open(stored, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            yield _header(name, size, self.created_at.timestamp())
            digest, written = hashlib.sha256(), 0
            while written < size:
                chunk = handle.read(min(READ_SIZE, size - written))
                if not chunk:
                    raise OSError(f"The recording {stored} shrank while it was being backed up.")
                digest.update(chunk)
                written += len(chunk)
                yield chunk
        yield _padding(size)
        self.members.append({"name": name, "size": size, "sha256": digest.hexdigest()})


def _compressed(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """gzip (RFC 1952) of the pieces, in blocks as they come."""
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)
    for piece in pieces:
        if out := compressor.compress(piece):
            yield out
    yield compressor.flush()


def _noted(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_backup(path: Path) -> Summary:
    """Write a backup to `path`, which must not exist (FileExistsError: the file there
    is left as it was). Returns what it holds."""
    return _write(path.parent, Backup(), [path.name])[1]


def write_dated_backup(folder: Path) -> tuple[Path, Summary]:
    """Write a backup into `folder` under a name of its own (`file_name`): a file already
    there, say another backup of the same microsecond, is never replaced; the next
    counter is taken instead. Returns the file and what it holds."""
    backup = Backup()
    names = [file_name(backup.created_at, counter) for counter in range(1, NAME_ATTEMPTS + 1)]
    return _write(folder, backup, names)


def _write(folder: Path, backup: Backup, names: list[str]) -> tuple[Path, Summary]:
    """The backup written under a temporary name of its own (so a failed backup never
    leaves a file that looks whole), then given the first of `names` that is free."""
    partial = folder / f".{names[0]}.{uuid.uuid4().hex[:12]}.partial"
    try:
        with open(partial, "xb") as out:
            for piece in backup:
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
        for name in names:
            try:
                _publish(partial, folder / name)
            except FileExistsError:
                continue
            return folder / name, backup.summary()
        raise FileExistsError(
            errno.EEXIST, f"{len(names)} backup names in a row are taken", str(folder / names[-1])
        )
    finally:
        partial.unlink(missing_ok=True)


def _publish(partial: Path, path: Path) -> None:
    """Give the written file the name `path` unless that name is taken (FileExistsError).

    A hard link fails rather than replace a file. Where the folder's file system has no
    hard links (FAT, some network shares), the name is claimed by creating it
    exclusively, then the written file replaces that empty claim.
    """
    try:
        os.link(partial, path)
        return
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        os.replace(partial, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


# Reading ------------------------------------------------------------------------------


@dataclass
class _Staged:
    """A backup read and checked: its head, manifest, and where its members were put."""

    head: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)
    records: list[Path] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)


def _refused(path: Path, why: str) -> RestoreRefused:
    return RestoreRefused(f"{path.name}: {why} Nothing was changed.")


def _check_head(path: Path, data: bytes) -> dict[str, Any]:
    try:
        head = orjson.loads(data)
    except orjson.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or head.get("type") != KIND:
        raise _refused(path, f"this is not a site backup (its {HEAD} is not one).")
    number = head.get("format")
    if type(number) is not int or number < 1:
        raise _refused(path, f"its backup format {number!r} is not one this site knows.")
    if number > FORMAT:
        raise _refused(
            path,
            f"it was written by version {head.get('version')} in backup format {number}; this "
            f"site runs version {SOFTWARE_VERSION}, which reads backup format {FORMAT} and "
            f"earlier. Restore it on version {head.get('version')} or later.",
        )
    return head


class _Reading:
    """Where the reading of the file has got to, for a message if it stops."""

    member = ""


def _read_members(path: Path, source: BinaryIO, staging: Path, reading: _Reading) -> _Staged:
    """Stage every member in `staging`, noting its size and SHA-256. The head must come
    first and the manifest last."""
    staged: _Staged | None = None
    with tarfile.open(fileobj=source, mode="r|*") as archive:
        for info in archive:
            reading.member = info.name
            if staged is not None and staged.manifest:
                raise _refused(path, f"it holds {info.name!r} after its manifest.")
            if not info.isfile():
                raise _refused(path, f"it holds {info.name!r}, which is not a file.")
            handle = archive.extractfile(info)
            if staged is None:
                if info.name != HEAD or info.size > READ_SIZE:
                    raise _refused(
                        path, f"this is not a site backup (it starts with {info.name!r})."
                    )
                data = handle.read()
                staged = _Staged(head=_check_head(path, data))
                staged.members.append(_noted(info.name, data))
            elif info.name == MANIFEST:
                data = handle.read()
                staged.members.append(_noted(info.name, data))
                staged.manifest = _parse_manifest(path, data)
            else:
                target = _stage_target(path, staged, info.name, staging)
                staged.members.append(_copy(handle, target, info.name))
    if staged is None:
        raise _refused(path, "the file is empty: it holds no backup.")
    if not staged.manifest:
        raise _refused(
            path,
            f"the file ends after {reading.member!r}, before its manifest: it was cut short "
            "(an interrupted copy or download?).",
        )
    return staged


def _copy(handle: BinaryIO, target: Path, name: str) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        for chunk in iter(lambda: handle.read(READ_SIZE), b""):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return {"name": name, "size": size, "sha256": digest.hexdigest()}


def _stage_target(path: Path, staged: _Staged, name: str, staging: Path) -> Path:
    if name.startswith(RECORDS_PREFIX):
        target = staging / f"records-{len(staged.records):06d}"
        staged.records.append(target)
        return target
    if name.startswith(FILES_PREFIX):
        stored = name.removeprefix(FILES_PREFIX)
        try:
            receive.safe_name(stored)
        except receive.SyncFailed:
            raise _refused(
                path, f"it names a file outside the media folder ({stored!r})."
            ) from None
        target = staging / f"file-{len(staged.files):06d}"
        staged.files[stored] = target
        return target
    raise _refused(path, f"it holds {name!r}, which no site backup holds.")


def _parse_manifest(path: Path, data: bytes) -> dict[str, Any]:
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _refused(path, "its manifest is not JSON: the file was altered or damaged.") from None
    ok = (
        isinstance(manifest, dict)
        and isinstance(manifest.get("members"), list)
        and isinstance(manifest.get("counts"), dict)
        and type(manifest.get("files")) is int
    )
    if not ok:
        raise _refused(path, "its manifest lacks its members or counts: the file was altered.")
    return manifest


def _verify(path: Path, staged: _Staged) -> None:
    """Every member as the manifest lists it: same names in the same order, same sizes
    and SHA-256 sums (the manifest does not list itself)."""
    listed = staged.manifest["members"]
    read = staged.members[:-1]
    for index, member in enumerate(read):
        expected = listed[index] if index < len(listed) else None
        if not isinstance(expected, dict) or expected.get("name") != member["name"]:
            raise _refused(
                path,
                f"its member {member['name']!r} is not the one its manifest lists there: the "
                "file was altered.",
            )
        if expected.get("size") != member["size"] or expected.get("sha256") != member["sha256"]:
            raise _refused(
                path,
                f"its member {member['name']!r} does not match the SHA-256 checksum in its "
                "manifest: the file was altered or damaged.",
            )
    if len(listed) != len(read):
        raise _refused(path, "it lacks members its manifest lists: the file was altered.")
    for key in ("format", "version", "site", "created_at"):
        if staged.manifest.get(key) != staged.head.get(key):
            raise _refused(
                path, f"its manifest and its head differ on {key}: the file was altered."
            )


def _stage(path: Path, staging: Path) -> _Staged:
    """Read the whole file into `staging`, checked: refusals name what is wrong."""
    try:
        source = open(path, "rb")  # noqa: SIM115 (closed below, with the archive)
    except OSError as error:
        raise RestoreRefused(
            f"Could not open {path}: {error.strerror}. Nothing was changed."
        ) from None
    reading = _Reading()
    with source:
        try:
            staged = _read_members(path, source, staging, reading)
        except (tarfile.TarError, EOFError, zlib.error) as error:
            where = f" in {reading.member!r}" if reading.member else ""
            if "unexpected end of data" in str(error) or isinstance(error, EOFError):
                why = (
                    f"the file ends early, after {source.tell()} bytes{where}: it was cut short "
                    "(an interrupted copy or download?)."
                )
            else:
                why = (
                    f"the file is damaged about {source.tell()} bytes in{where} ({error}), or "
                    "it is not a site backup."
                )
            raise _refused(path, why) from None
        except OSError as error:
            raise RestoreRefused(
                f"Could not read {path} into {staging}: {error.strerror or error}. "
                "Nothing was changed."
            ) from None
    _verify(path, staged)
    return staged


def staging_root() -> Path:
    return settings.DATA_DIR / "restore"


def _receive(path: Path, staged: _Staged, spool: Path) -> receive.Received:
    """The staged records, checked and converted exactly as a sync's download is."""
    try:
        with receive.Receiver(SEAL_KEY, spool, Silent()) as receiver:
            pending = b""
            for part in staged.records:
                with open(part, "rb") as records:
                    while chunk := records.read(READ_SIZE):
                        pending += chunk
                        if len(pending) > receive.MAX_LINE:
                            raise _refused(path, "its records hold a line longer than any record.")
                        *lines, pending = pending.split(b"\n")
                        for line in lines:
                            receiver.take(line)
            return receiver.finish(pending)
    except receive.ColumnsDiffer as differ:
        raise _refused(
            path,
            f"this backup holds {differ.label} with the columns {differ.sent}, this site "
            f"expects {differ.expected}; restore it with the version that wrote it "
            f"({staged.head.get('version')}).",
        ) from None
    except receive.FormatDiffers as differ:
        raise _refused(
            path,
            f"this backup holds its records in sync format {differ.sent}, this site reads "
            f"sync formats {SYNC_FORMATS_READ[0]} to {SYNC_FORMATS_READ[1]}; restore it with "
            "the version that wrote it "
            f"({staged.head.get('version')}).",
        ) from None
    except receive.RecordRefused as error:
        raise _refused(
            path,
            f"its {error.refused.record} Correct the record on the site that wrote the backup "
            "and take a new one.",
        ) from None
    except receive.SyncFailed as error:
        raise _refused(path, f"its records do not fit this site's data ({error.message})") from None


def _check_recordings(path: Path, staged: _Staged, received: receive.Received) -> None:
    """Each recording the reports name must be in the file, with the size and checksum
    its report carries."""
    members = {m["name"]: m for m in staged.members if m["name"].startswith(FILES_PREFIX)}
    with open(received.spool / receive.RECORDINGS, "rb") as named:
        for line in named:
            recording = orjson.loads(line)
            member = members.get(FILES_PREFIX + recording["name"])
            if member is None:
                raise _refused(path, f"it lacks the recording {recording['name']}.")
            if (member["size"], member["sha256"]) != (recording["size"], recording["sha256"]):
                raise _refused(
                    path, f"the recording {recording['name']} differs from what its report says."
                )


# Restoring ----------------------------------------------------------------------------


def refuse_if_paired() -> None:
    state = FailoverState.load()
    if state.is_paired:
        raise RestoreRefused(
            f"This site is the {state.role} of a failover pair with "
            f"{state.peer_name or state.peer_address}: a restore would replace data the pair "
            "keeps in step. Break the relationship first (manage.py failover break), restore, "
            "then establish it again from the site whose data should win. Nothing was changed."
        )


def restore(path: Path, *, actor: object = None) -> Summary:
    """Replace this site's data with the backup in `path`, all or nothing.

    Refuses (RestoreRefused, nothing changed) a paired site, a file that is not a
    backup, one from a newer format, one cut short, one whose checksums fail.
    Everyone signs in again afterwards: the sessions belonged to the old users.
    """
    refuse_if_paired()
    with _one_restore_at_a_time():
        recover_interrupted_restore()
        root = staging_root()
        shutil.rmtree(root, ignore_errors=True)
        receive.remove_unapplied_files()
        staging = root / uuid.uuid4().hex
        (staging / "spool").mkdir(parents=True)
        moves = _Moves(uuid.uuid4())
        try:
            staged = _stage(path, staging)
            received = _receive(path, staged, staging / "spool")
            _check_recordings(path, staged, received)
            try:
                moves.place(staged.files)
                removed = _apply(path, staged, received, moves.generation, actor)
            except BaseException:
                moves.undo()
                raise
            _forget_displaced()
        finally:
            receive.remove_unapplied_files()
            shutil.rmtree(staging, ignore_errors=True)
    for name in removed:
        default_storage.delete(name)
    manifest = staged.manifest
    return Summary(
        counts=manifest["counts"],
        files=manifest["files"],
        size=path.stat().st_size,
        version=manifest["version"],
        site=manifest["site"],
        created_at=manifest["created_at"],
    )


def _apply(
    path: Path,
    staged: _Staged,
    received: receive.Received,
    generation: uuid.UUID,
    actor: object,
) -> list[str]:
    """One transaction: empty the data, load the records, mark the new generation (how a
    recovery tells that the restore committed). Returns the files no restored report
    uses (to remove after the commit)."""
    with (
        transaction.atomic(),
        changelog.paused(),
        bulkload.indexes_built_afterwards(list(receive.WIPED)),
    ):
        FailoverState.objects.select_for_update().filter(pk=1).first()
        refuse_if_paired()
        removed = receive.wipe()
        Session.objects.all().delete()
        permissions = codec.PermissionMap()
        for label, _op, batch in receive.spooled(received):
            codec.BY_LABEL[label].upsert(batch, permissions)
        _check_counts(path, staged.manifest["counts"])
        receive.reset_sequences()
        _new_generation(generation)
        summary = Summary(counts=staged.manifest["counts"], files=staged.manifest["files"])
        what = (
            f"This site's data was replaced by the backup {path.name} of "
            f"{staged.manifest['site']}, made {staged.manifest['created_at']} by version "
            f"{staged.manifest['version']}: {summary.describe()}."
        )
        FailoverEvent.record(FailoverEvent.Kind.RESTORED, what, actor=actor)
        AuditEvent.record(actor, "site.restore", what)
    still_used = set(
        Report.objects.filter(recording__in=removed).values_list("recording", flat=True)
    )
    return [name for name in removed if name not in still_used]


def _check_counts(path: Path, counts: dict[str, int]) -> None:
    for synced in codec.SYNCED:
        found = synced.model.objects.count()
        if found != counts.get(synced.label):
            raise _refused(
                path,
                f"its manifest counts {counts.get(synced.label)} {synced.label} record(s); "
                f"its records hold {found}.",
            )


def displaced_folder() -> Path:
    """Where a restore keeps this site's files it moved out of the way, until it commits."""
    return settings.DATA_DIR / "restore-displaced"


def displaced_journal() -> Path:
    """What a running restore moved aside, and the generation its commit will set."""
    return settings.DATA_DIR / "restore-displaced.json"


@contextlib.contextmanager
def _one_restore_at_a_time() -> Iterator[None]:
    with open(settings.DATA_DIR / "restore.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreRefused(
                "Another restore of this site is running: wait for it to end. Nothing was changed."
            ) from None
        yield


def recover_interrupted_restore() -> str:
    """After a restore that died (a killed process, a power cut), put this site's files
    as its data expects them. Run before each restore and at each start.

    The journal names the files the restore moved aside. Its transaction set a new
    generation: if the site has it, the restore committed and the files it moved aside
    are of no further use; if not, they go back where they were. Either way the files
    it placed that no report uses are removed (the sync's own journal). Returns what it
    did, in a sentence ("" when there was nothing to recover).
    """
    journal = displaced_journal()
    try:
        entry = orjson.loads(journal.read_bytes())
    except FileNotFoundError:
        return ""
    committed = str(SyncSource.load().generation) == entry["generation"]
    receive.remove_unapplied_files()
    if committed:
        said = "A restore had committed before it stopped: the files it replaced were removed."
    else:
        _put_back(entry["displaced"])
        said = (
            f"A restore stopped before it committed: {len(entry['displaced'])} file(s) it had "
            "moved aside were put back."
        )
    _forget_displaced()
    logger.warning("%s", said)
    return said


def recover_at_start() -> str:
    """`recover_interrupted_restore`, unless a restore is running now (its files are its own)."""
    try:
        with _one_restore_at_a_time():
            return recover_interrupted_restore()
    except RestoreRefused:
        return "A restore of this site is running: its files are left to it."


def _put_back(displaced: list[list[str]]) -> None:
    media, folder = Path(settings.MEDIA_ROOT), displaced_folder()
    for name, kept in displaced:
        if (folder / kept).is_file():  # moved aside (else it never left its place)
            _move_whole(folder / kept, media / name)


def _forget_displaced() -> None:
    shutil.rmtree(displaced_folder(), ignore_errors=True)
    displaced_journal().unlink(missing_ok=True)


def _move_whole(source: Path, target: Path) -> None:
    """Move a file so that, at any moment a process may die, `target` is either as it
    was or the whole of `source`, and `source` goes only once `target` is whole (on
    another file system a copy is made beside the target and renamed over it)."""
    try:
        os.replace(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    copy = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        shutil.copyfile(source, copy)
        with open(copy, "rb") as written:
            os.fsync(written.fileno())
        os.replace(copy, target)
    finally:
        copy.unlink(missing_ok=True)
    source.unlink()


class _Moves:
    """The backup's files on their way into the media folder, and how to undo that.

    A file already here with the same content stays. One here under the same name with
    other content moves aside into `displaced_folder`, named first in a journal (fsynced)
    so that a restore that dies before its commit is undone at the next start or the
    next restore (`recover_interrupted_restore`). The other files are placed with the
    sync's journal (`receive.place_files`).
    """

    def __init__(self, generation: uuid.UUID) -> None:
        self.generation = generation
        self.new: list[Path] = []
        self.displaced: list[list[str]] = []

    def place(self, files: dict[str, Path]) -> None:
        media = Path(settings.MEDIA_ROOT)
        incoming: dict[str, Path] = {}
        for name, source in files.items():
            target = media / name
            if target.is_file():
                if _digest(target) == _digest(source):
                    continue
                self.displaced.append([name, str(len(self.displaced))])
            else:
                self.new.append(target)
            incoming[name] = source
        if self.displaced:
            folder = displaced_folder()
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            _write_synced(
                displaced_journal(),
                orjson.dumps({"generation": str(self.generation), "displaced": self.displaced}),
            )
            for name, kept in self.displaced:
                _move_whole(media / name, folder / kept)
        receive.place_files(incoming)

    def undo(self) -> None:
        for target in self.new:
            target.unlink(missing_ok=True)
        _put_back(self.displaced)
        _forget_displaced()


def _write_synced(path: Path, data: bytes) -> None:
    """`data` in `path`, whole or not at all, on disk before this returns."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def _digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_SIZE):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def _new_generation(generation: uuid.UUID) -> None:
    """The change log described the data that was replaced: a backup paired later
    starts from a full sync."""
    ChangeLog.objects.all().delete()
    source = SyncSource.load()
    SyncSource.objects.filter(pk=source.pk).update(generation=generation, horizon=source.last_seq)


# The scheduled backup -----------------------------------------------------------------


def save_schedule(config: ScheduledBackup, actor: object) -> str:
    """Save the daily backup's settings (checked by ScheduledBackupForm), put its
    periodic task in step, and audit it. Returns what was set, in a sentence."""
    config.save()
    schedule.apply_backup(config)
    said = (
        f"Daily backup at {config.at:%H:%M} to {config.folder}, keeping {config.keep}."
        if config.enabled
        else "Daily backup turned off."
    )
    AuditEvent.record(actor, "site.backup_schedule", said)
    return said


def run_scheduled() -> Summary | None:
    """The daily backup to the chosen folder, keeping the newest `keep` files. Its outcome
    goes on the settings row (the Status page) and, when it fails, into the status
    history, which alerts."""
    config = ScheduledBackup.load()
    if not config.enabled:
        return None
    config.started()
    folder = Path(config.folder)
    try:
        path, summary = write_dated_backup(folder)
        pruned = prune(folder, config.keep)
    except (OSError, DatabaseError) as error:
        message = (
            f"The scheduled backup of {settings.APPLIANCE_NAME} to {folder} failed: "
            f"{getattr(error, 'strerror', None) or error}. The last good backup is the newest "
            "file in that folder."
        )
        config.finished(error=message)
        FailoverEvent.record(
            FailoverEvent.Kind.BACKUP_FAILED, message, severity=FailoverEvent.Severity.DANGER
        )
        return None
    name = str(path)
    config.finished(file=name, size=summary.size)
    FailoverEvent.record(
        FailoverEvent.Kind.BACKUP,
        f"Scheduled backup written to {name} ({summary.size} bytes: {summary.describe()})"
        + (f"; {len(pruned)} older backup(s) deleted." if pruned else "."),
    )
    return summary


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete this site's backups in `folder` beyond the newest `keep` (by the time and
    counter in their names). Only names this site's backups take are touched: not
    another site's, not a file of any other name."""
    pattern = re.compile(FILE_NAME_PATTERN.format(site=re.escape(settings.APPLIANCE_NAME)))
    mine: list[tuple[tuple[str, str, str, int], Path]] = []
    for path in folder.iterdir():
        if (found := pattern.fullmatch(path.name)) and path.is_file():
            day, time, micro, counter = found.groups()
            mine.append(((day, time, micro or "000000", int(counter or 1)), path))
    mine.sort()
    old = [path for _, path in mine[: max(0, len(mine) - keep)]]
    for path in old:
        path.unlink(missing_ok=True)
    return old
