"""How each synced model becomes a JSON record and how records are applied on the backup.

Records keep the primary's primary keys, so the backup is a row-for-row mirror:
sessions, links and API references mean the same thing on both sites.
Permissions travel by natural key (app label, codename) because content-type
ids differ between databases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.core.files.storage import default_storage
from django.db import connection, models

from appliance.models import Report, SiteSettings

Record = dict[str, Any]


def _plain_fields(model: type[models.Model], exclude: tuple[str, ...] = ()) -> list[models.Field]:
    return [
        field
        for field in model._meta.concrete_fields
        if not field.is_relation and field.name not in exclude
    ]


def _dump(obj: models.Model, fields: list[models.Field]) -> Record:
    return {field.attname: field.value_from_object(obj) for field in fields}


class PermissionMap:
    """Natural keys of permissions to this database's ids, read once per apply."""

    def __init__(self) -> None:
        self._ids = {
            (app, codename): pk
            for pk, app, codename in Permission.objects.values_list(
                "pk", "content_type__app_label", "codename"
            )
        }

    def ids(self, natural_keys: Iterable[list[str]]) -> list[int]:
        return [self._ids[tuple(key)] for key in natural_keys if tuple(key) in self._ids]


def _natural(permissions: Iterable[Permission]) -> list[list[str]]:
    return sorted([p.content_type.app_label, p.codename] for p in permissions)


@dataclass(frozen=True)
class Synced:
    """One synced model: its label in the stream, how to read it, how to apply it."""

    label: str
    model: type[models.Model]
    queryset: Callable[[], models.QuerySet]
    dump: Callable[[models.Model], Record]
    upsert: Callable[[list[Record], PermissionMap], None]

    def delete(self, keys: list[int]) -> list[str]:
        """Delete rows by key; return the recording files they held (to remove after commit)."""
        rows = self.model.objects.filter(pk__in=keys)
        files = []
        if self.model is Report:
            files = [
                name for name in rows.exclude(recording="").values_list("recording", flat=True)
            ]
        rows.delete()
        return files


def _upsert(model: type[models.Model], records: list[Record], fields: list[models.Field]) -> None:
    """Insert or update rows by primary key, with the values exactly as the primary sent them.

    One INSERT ... ON CONFLICT (id) DO UPDATE statement run with executemany
    (SQLite and PostgreSQL both have it): about three times faster than
    bulk_create(update_conflicts=True), which spends most of its time building
    SQL, and it leaves auto_now fields as they came.
    """
    if not records:
        return
    quote = connection.ops.quote_name
    columns = [field.column for field in fields]
    pk = model._meta.pk.column
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c != pk)
    # Identifiers come from the model's own metadata, quoted; values are bound.
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({quote(pk)}) DO UPDATE SET {updates}"
    )
    # Straight from the records to database values: no model instances in between.
    rows = [
        [
            field.get_db_prep_save(field.to_python(record.get(field.attname)), connection)
            for field in fields
        ]
        for record in records
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


# Groups -------------------------------------------------------------------------------

GROUP_FIELDS = _plain_fields(Group)


def _dump_group(group: Group) -> Record:
    return {**_dump(group, GROUP_FIELDS), "permissions": _natural(group.permissions.all())}


def _upsert_groups(records: list[Record], permissions: PermissionMap) -> None:
    _upsert(Group, records, GROUP_FIELDS)
    through = Group.permissions.through
    through.objects.filter(group_id__in=[r["id"] for r in records]).delete()
    through.objects.bulk_create(
        through(group_id=r["id"], permission_id=pk)
        for r in records
        for pk in permissions.ids(r["permissions"])
    )


# Users --------------------------------------------------------------------------------

USER_FIELDS = _plain_fields(User)


def _dump_user(user: User) -> Record:
    return {
        **_dump(user, USER_FIELDS),
        "groups": sorted(group.pk for group in user.groups.all()),
        "user_permissions": _natural(user.user_permissions.all()),
    }


def _upsert_users(records: list[Record], permissions: PermissionMap) -> None:
    _upsert(User, records, USER_FIELDS)
    keys = [r["id"] for r in records]
    groups, perms = User.groups.through, User.user_permissions.through
    groups.objects.filter(user_id__in=keys).delete()
    perms.objects.filter(user_id__in=keys).delete()
    groups.objects.bulk_create(
        groups(user_id=r["id"], group_id=group) for r in records for group in r["groups"]
    )
    perms.objects.bulk_create(
        perms(user_id=r["id"], permission_id=pk)
        for r in records
        for pk in permissions.ids(r["user_permissions"])
    )


# Site settings ------------------------------------------------------------------------

SETTINGS_FIELDS = _plain_fields(SiteSettings)


def _upsert_settings(records: list[Record], _permissions: PermissionMap) -> None:
    _upsert(SiteSettings, records, SETTINGS_FIELDS)


# Reports ------------------------------------------------------------------------------

REPORT_FIELDS = _plain_fields(Report, exclude=("recording",))


def file_digest(name: str) -> tuple[int, str]:
    """Size and SHA-256 of a stored file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with default_storage.open(name, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _dump_report(report: Report) -> Record:
    record = _dump(report, REPORT_FIELDS)
    record["recording"] = None
    if report.recording and default_storage.exists(report.recording.name):
        size, sha256 = file_digest(report.recording.name)
        record["recording"] = {"name": report.recording.name, "size": size, "sha256": sha256}
    return record


RECORDING = Report._meta.get_field("recording")


def _upsert_reports(records: list[Record], _permissions: PermissionMap) -> None:
    rows = [
        {**record, "recording": (record.get("recording") or {}).get("name", "")}
        for record in records
    ]
    _upsert(Report, rows, [*REPORT_FIELDS, RECORDING])


# In dependency order: groups before the users that belong to them.
SYNCED: tuple[Synced, ...] = (
    Synced(
        "auth.group",
        Group,
        lambda: Group.objects.prefetch_related("permissions__content_type"),
        _dump_group,
        _upsert_groups,
    ),
    Synced(
        "auth.user",
        User,
        lambda: User.objects.prefetch_related("groups", "user_permissions__content_type"),
        _dump_user,
        _upsert_users,
    ),
    Synced(
        "appliance.sitesettings",
        SiteSettings,
        SiteSettings.objects.all,
        lambda s: _dump(s, SETTINGS_FIELDS),
        _upsert_settings,
    ),
    Synced("appliance.report", Report, Report.objects.all, _dump_report, _upsert_reports),
)
BY_LABEL = {synced.label: synced for synced in SYNCED}
BY_MODEL = {synced.model: synced for synced in SYNCED}
