"""Data a site keeps in a file before anything can overwrite it.

Two moments call for it. A site that loses a role conflict (Fix This Error)
exports all its synced data. A primary that steps down while it holds changes
its successor has not applied (writes it acknowledged after the last change the
backup confirmed) exports those changes: the next full sync would otherwise
overwrite them without a word. Either way the Failover page offers the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core import serializers
from django.core.management import call_command
from django.utils import timezone

from failover.models import ChangeLog, FailoverEvent, FailoverState, SyncSource
from failover.sync import changelog, codec

EXPORTED_MODELS = ("auth.group", "auth.user", "appliance.sitesettings", "appliance.report")


def exports_dir() -> Path:
    return settings.DATA_DIR / "exports"


def _new_file(suffix: str = "") -> Path:
    folder = exports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{timezone.now():%Y%m%d-%H%M%S}-{settings.APPLIANCE_NAME}{suffix}.json"


def export_data(reason: str) -> Path:
    """Save this site's synced data to a file before a sync may overwrite it."""
    path = _new_file()
    call_command("dumpdata", *EXPORTED_MODELS, output=str(path), verbosity=0)
    FailoverEvent.record(
        FailoverEvent.Kind.CONFLICT,
        f"{settings.APPLIANCE_NAME}'s data was saved to {path.name} before it becomes backup "
        f"({reason}). Download it from the Failover page.",
    )
    return path


def keep_unsent_changes(reason: str) -> int:
    """Before this primary becomes backup: export what its successor lacks; how many changes.

    What the successor lacks is every change after the last one it acknowledged
    (its requests for changes carry its cursor). If it never acknowledged any of
    this log, this site cannot tell what it lacks and exports all its data.
    """
    state = FailoverState.load()
    latest = changelog.sequence()
    source = SyncSource.load()
    acked = (
        state.peer_acked_seq
        if state.peer_acked_generation is not None
        and str(state.peer_acked_generation) == str(source.generation)
        else None
    )
    if acked is not None and acked >= latest:
        return 0
    if acked is None:
        if not ChangeLog.objects.exists():
            return 0
        path = _new_file("-unsent")
        call_command("dumpdata", *EXPORTED_MODELS, output=str(path), verbosity=0)
        changes = ChangeLog.objects.values("model", "key").distinct().count()
        what = (
            f"{state.peer_name or 'The other site'} never confirmed any of this site's changes, "
            f"so all of {settings.APPLIANCE_NAME}'s data was saved to {path.name}"
        )
    else:
        path, changes = _export_changes_after(acked)
        what = (
            f"{changes} change(s) acknowledged by {settings.APPLIANCE_NAME} that "
            f"{state.peer_name or 'the other site'} had not applied were saved to {path.name}"
        )
    FailoverState.objects.filter(pk=1).update(
        unsent_changes=changes, unsent_export=path.name, unsent_at=timezone.now()
    )
    FailoverEvent.record(
        FailoverEvent.Kind.UNSENT_CHANGES,
        f"{what} before it becomes backup ({reason}). Download the file from its Failover "
        "page: the next sync replaces this site's data with the new primary's.",
        severity=FailoverEvent.Severity.DANGER,
    )
    return changes


def _export_changes_after(acked: int) -> tuple[Path, int]:
    """The records changed after `acked`, as they are now, and the keys deleted since."""
    path = _new_file("-unsent")
    changed = ChangeLog.objects.filter(seq__gt=acked)
    records: list[dict[str, object]] = []
    deleted: list[dict[str, object]] = []
    count = 0
    for synced in codec.SYNCED:
        keys = sorted(set(changed.filter(model=synced.label).values_list("key", flat=True)))
        count += len(keys)
        present = synced.model.objects.filter(pk__in=keys)
        records += json.loads(serializers.serialize("json", present))
        gone = set(keys) - set(present.values_list("pk", flat=True))
        deleted += [{"model": synced.label, "pk": key} for key in sorted(gone)]
    path.write_text(
        json.dumps(
            {
                "site": settings.APPLIANCE_NAME,
                "generation": str(SyncSource.load().generation),
                "after": acked,
                "records": records,
                "deleted": deleted,
            },
            indent=1,
        )
    )
    return path, count
