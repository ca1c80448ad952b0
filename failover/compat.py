"""The compatibility contract between the two sites of a pair.

A pair is upgraded one site at a time, so for a while its sites run different
releases. Each release states here what it speaks and reads, and announces it in
its hello (`announcement`, under "compat"):

- the peer protocol: the peer API's calls, their payloads and answers. A site
  speaks PEER_PROTOCOL and works with a peer that speaks any protocol from
  PEER_PROTOCOL_OLDEST to it. Two sites work together when the newer one works
  with the older one's protocol.
- the sync format: the change streams a primary writes (SYNC_FORMATS_WRITTEN, the
  newest being SYNC_FORMAT) and the formats a backup reads (SYNC_FORMATS_READ, oldest
  and newest). A primary writes the newest format its backup reads.
- the schema: for each synced model, the columns a site sends and accepts
  (failover.sync.codec). A backup applies a model's records only when the
  primary sends the columns it has.

The rule for a release: keep PEER_PROTOCOL_OLDEST at most one below
PEER_PROTOCOL, and keep reading the previous sync format, so a pair one release
apart works in both directions (syncs from the old site to the new and back,
role changes, polls). A release that changes the columns of a synced model
changes the schema both ways; `failover check` and the Failover pages say
which direction a sync would be refused in, and the backup refuses such a
stream before it writes anything.

Releases before the announcement say nothing: they speak protocol 1 and write
and read sync format 2 (FIRST).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.version import SOFTWARE_VERSION
from failover.sync.codec import SYNCED

# 1: the releases that announced nothing. 2: the hello announces "compat"; the backup
# says in each request for changes what it can read.
PEER_PROTOCOL = 2
PEER_PROTOCOL_OLDEST = 1
# Sync format 3: a user's API token travels as its SHA-256 digest (2: as the key itself;
# a primary writing 2 for a backup of the release before sends no tokens, as it keeps
# only digests, and the backup reading 2 hashes the keys it is sent), and API accounts
# travel (2 has no such model: a stream in format 2 leaves them out).
SYNC_FORMAT = 3
SYNC_FORMATS_WRITTEN = (2, 3)
SYNC_FORMATS_READ = (2, 3)
# What the releases before the announcement wrote and read.
FIRST_SYNC_FORMAT = 2


@dataclass(frozen=True)
class Announcement:
    """What one site speaks and reads, as its hello says (`of`) or as this site is (`ours`)."""

    version: str
    protocol: int
    protocol_oldest: int
    sync_format: int
    sync_reads: tuple[int, int]
    sync_writes: tuple[int, int]
    # Model label -> columns; None where the site did not say (protocol 1).
    schema: dict[str, list[str]] | None

    @classmethod
    def ours(cls) -> Announcement:
        return cls(
            version=SOFTWARE_VERSION,
            protocol=PEER_PROTOCOL,
            protocol_oldest=PEER_PROTOCOL_OLDEST,
            sync_format=SYNC_FORMAT,
            sync_reads=SYNC_FORMATS_READ,
            sync_writes=SYNC_FORMATS_WRITTEN,
            schema={synced.label: synced.columns for synced in SYNCED},
        )

    @classmethod
    def of(cls, said: Mapping[str, Any]) -> Announcement:
        """From a hello (or anything carrying "version" and "compat"). No "compat": FIRST.

        Raises ValueError when "compat" is there but not in this shape.
        """
        version = str(said.get("version") or "unknown")
        compat = said.get("compat")
        if compat is None:
            first = (FIRST_SYNC_FORMAT,) * 2
            return cls(version, 1, 1, FIRST_SYNC_FORMAT, first, first, None)
        try:
            oldest_read, newest_read = (int(n) for n in compat["sync_reads"])
            writes = compat.get("sync_writes") or [compat["sync_format"]] * 2
            oldest_written, newest_written = (int(n) for n in writes)
            schema = compat.get("schema")
            return cls(
                version=version,
                protocol=int(compat["protocol"]),
                protocol_oldest=int(compat["protocol_oldest"]),
                sync_format=int(compat["sync_format"]),
                sync_reads=(oldest_read, newest_read),
                sync_writes=(oldest_written, newest_written),
                schema={str(label): [str(c) for c in columns] for label, columns in schema.items()}
                if isinstance(schema, dict)
                else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(
                f"The peer's announcement of what it speaks is malformed: {str(compat)[:200]}"
            ) from None

    def as_dict(self) -> dict[str, Any]:
        """The hello's "compat" (the version travels beside it, as "version")."""
        return {
            "protocol": self.protocol,
            "protocol_oldest": self.protocol_oldest,
            "sync_format": self.sync_format,
            "sync_reads": list(self.sync_reads),
            "sync_writes": list(self.sync_writes),
            "schema": self.schema,
        }

    @property
    def described(self) -> str:
        return f"{self.version} (peer protocol {self.protocol}, sync format {self.sync_format})"

    def works_with(self, protocol: int) -> bool:
        return self.protocol_oldest <= protocol <= self.protocol

    def reads(self, sync_format: int) -> bool:
        return self.sync_reads[0] <= sync_format <= self.sync_reads[1]


def announcement() -> dict[str, Any]:
    """This site's "compat", for its hello and its requests for changes."""
    return Announcement.ours().as_dict()


@dataclass(frozen=True)
class Verdict:
    """Whether this site and its peer work together; each problem is a sentence."""

    ours: Announcement
    theirs: Announcement
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def sentence(self) -> str:
        return " ".join(self.problems)


def assess(said: Mapping[str, Any], peer_name: str) -> Verdict:
    """Can this site and the peer (its hello, `said`) work together, in both directions?"""
    ours = Announcement.ours()
    try:
        theirs = Announcement.of(said)
    except ValueError as error:
        unknown = Announcement(str(said.get("version") or "unknown"), 0, 0, 0, (0, 0), (0, 0), None)
        return Verdict(ours, unknown, (f"{peer_name}: {error}",))
    problems: list[str] = []
    if not (ours.works_with(theirs.protocol) or theirs.works_with(ours.protocol)):
        older, newer = (
            (f"{peer_name}", "this site") if theirs.protocol < ours.protocol else
            ("this site", f"{peer_name}")
        )  # fmt: skip
        problems.append(
            f"{peer_name} runs {theirs.described} and works with peer protocols "
            f"{theirs.protocol_oldest} to {theirs.protocol}; this site runs {ours.described} "
            f"and works with {ours.protocol_oldest} to {ours.protocol}. The sites cannot talk: "
            f"upgrade {older} to a release at most one apart from {newer}."
        )
    problems += sync_problems(theirs, ours, f"from {peer_name} to this site")
    problems += sync_problems(ours, theirs, f"from this site to {peer_name}")
    return Verdict(ours, theirs, tuple(problems))


def common_format(writer: Announcement, reader: Announcement) -> int | None:
    """The newest sync format `writer` writes and `reader` reads (None: there is none)."""
    newest = min(writer.sync_writes[1], reader.sync_reads[1])
    return newest if newest >= max(writer.sync_writes[0], reader.sync_reads[0]) else None


def sync_problems(writer: Announcement, reader: Announcement, direction: str) -> list[str]:
    """Why a sync `direction` (writer primary, reader backup) would be refused; [] if not."""
    if common_format(writer, reader) is None:
        return [
            f"A sync {direction} would be refused: the primary writes sync formats "
            f"{writer.sync_writes[0]} to {writer.sync_writes[1]}, the backup reads formats "
            f"{reader.sync_reads[0]} to {reader.sync_reads[1]}."
        ]
    if writer.schema is None or reader.schema is None:
        return []
    problems = []
    for label, columns in writer.schema.items():
        accepted = reader.schema.get(label)
        if accepted is None:
            problems.append(f"the backup does not know {label}")
        elif accepted != columns:
            extra = [c for c in columns if c not in accepted]
            missing = [c for c in accepted if c not in columns]
            differences = [
                *([f"sends {', '.join(extra)} that the backup lacks"] if extra else []),
                *([f"lacks {', '.join(missing)} that the backup has"] if missing else []),
            ] or ["sends the columns in another order"]
            problems.append(f"for {label} the primary {' and '.join(differences)}")
    if not problems:
        return []
    return [f"A sync {direction} would be refused: {'; '.join(problems)}."]


def format_to_send(said: Mapping[str, Any] | None) -> int:
    """On the primary: the sync format to write for a backup whose request said `said`
    (after refusal_to_send found nothing to refuse)."""
    reader = Announcement.of({"version": "of the backup", "compat": said})
    return common_format(Announcement.ours(), reader) or SYNC_FORMAT


def needs_full(applied: int | None, sending: int) -> bool:
    """On the primary: whether a backup whose data came in sync format `applied` (None: it
    did not say, or holds none) needs everything again to read `sending`. A newer format
    carries what an older one left out (format 3: API accounts, tokens), which an
    incremental sync would send only for the records that change again."""
    return applied is not None and applied < sending


def refusal_to_send(said: Mapping[str, Any] | None) -> str:
    """On the primary: why it cannot send a backup that reads what `said` says ("": it can).

    `said` is the "compat" of the backup's request for changes; the first releases send none.
    """
    try:
        reader = Announcement.of({"version": "of the backup", "compat": said})
    except ValueError as error:
        return str(error)
    return " ".join(sync_problems(Announcement.ours(), reader, "from this site to the backup"))
