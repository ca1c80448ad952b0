"""How each synced model travels as rows of values and how rows are applied on the backup.

On the wire a model's records are JSON arrays: one value per column, in the order
of `Synced.columns`. The columns are the model's own fields (read with
`values_list`, never as model instances) followed by its extras: many-to-many
keys, or a report's recording as its name, size and SHA-256.

Records keep the primary's primary keys, so the backup is a row-for-row mirror:
sessions, links and API references mean the same thing on both sites.
Permissions travel by natural key (app label, codename) because content-type
ids differ between databases.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.core.files.storage import default_storage
from django.db import connection, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from django.db.models.functions import Cast

from appliance import api_accounts
from appliance.models import ApiAccount, ApiToken, Report, SiteSettings
from failover.sync import checks

Row = list[Any]
Convert = Callable[[Any], Any]
# Rows read from the database at a time (the primary's memory stays flat).
READ_CHUNK = 2000


def _plain_fields(model: type[models.Model], exclude: tuple[str, ...] = ()) -> list[models.Field]:
    """The model's own columns, primary key first."""
    pk = model._meta.pk
    return [pk] + [
        field
        for field in model._meta.concrete_fields
        if not field.is_relation and field.name not in exclude and field is not pk
    ]


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


def converter(field: models.Field, database: BaseDatabaseWrapper) -> Convert:
    """From a value as JSON carries it to what `database` stores for `field`.

    The result is what `field.get_db_prep_save(field.to_python(value))` gives, which
    is what Django itself would write. Run for every value of a full sync, that chain
    is most of the apply's time, so the common cases take a shortcut to the same
    result and everything else goes the long way.
    """

    def exact(value: Any) -> Any:
        return field.get_db_prep_save(field.to_python(value), database)

    kind = type(field)
    if kind in (models.CharField, models.TextField, models.EmailField):
        return lambda value: value if type(value) is str else exact(value)
    if kind is models.BooleanField:
        return lambda value: value if type(value) is bool else exact(value)
    if kind in (models.AutoField, models.BigAutoField):
        validate = database.ops.validate_autopk_value
        return lambda value: validate(value) if type(value) is int else exact(value)
    if kind in (models.IntegerField, models.BigIntegerField, models.PositiveIntegerField):
        adapt_integer, internal = database.ops.adapt_integerfield_value, field.get_internal_type()
        return lambda value: adapt_integer(value, internal) if type(value) is int else exact(value)
    if kind is models.UUIDField:
        native = database.features.has_native_uuid_field
        return lambda value: (
            (UUID(value) if native else UUID(value).hex) if type(value) is str else exact(value)
        )
    if kind is models.DateTimeField:
        return _datetime_converter(database, exact)
    return lambda value: None if value is None else exact(value)


def _datetime_converter(database: BaseDatabaseWrapper, exact: Convert) -> Convert:
    """Datetimes travel as ISO 8601 text; without an offset they are UTC (see `read_as`)."""
    if database.vendor == "sqlite" and settings.USE_TZ and database.timezone_name == "UTC":
        # What SQLite's adapt_datetimefield_value stores: the text of the naive UTC time.
        # Its checks, run for every value, were a third of a full sync's conversion.
        def to_sqlite(value: Any) -> Any:
            if type(value) is not str:
                return exact(value)
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            return str(moment)

        return to_sqlite
    adapt = database.ops.adapt_datetimefield_value

    def to_database(value: Any) -> Any:
        if type(value) is not str:
            return exact(value)
        moment = dt.datetime.fromisoformat(value)
        return adapt(moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC))

    return to_database


def read_as(field: models.Field) -> str | Cast:
    """How the primary reads a field for the stream.

    Datetimes and UUIDs are read as the text the database holds, not through
    Django's converters to Python objects (most of the primary's time in a full
    sync). That text is ISO 8601 without an offset for UTC on SQLite, with one on
    PostgreSQL; a UUID with or without dashes. The backup parses either.
    """
    if type(field) in (models.DateTimeField, models.UUIDField):
        return Cast(field.attname, models.TextField())
    return field.attname


def _keep(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Synced:
    """One synced model: its label in the stream, its columns, how to read and apply rows.

    `fields` are read with values_list; `extras` name the columns that `complete`
    appends to each chunk of rows read; `upsert` writes rows whose values went
    through `converters(...)`.
    """

    label: str
    model: type[models.Model]
    fields: list[models.Field]
    extras: tuple[str, ...]
    complete: Callable[[list[Row]], None]
    upsert: Callable[[list[Row], PermissionMap], None]
    # The first sync format that carries this model: a backup reading an older one has no
    # such table, and its stream leaves the model out.
    since_format: int = 2

    @property
    def columns(self) -> list[str]:
        return [field.attname for field in self.fields] + list(self.extras)

    def with_last_extra_empty(self) -> Synced:
        """The same model with None in its last extra column (what an older format lacks)."""
        complete = self.complete

        def completed(chunk: list[Row]) -> None:
            complete(chunk)
            for row in chunk:
                row[-1] = None

        return replace(self, complete=completed)

    def rows(self, keys: list[int] | None = None) -> Iterator[Row]:
        """Rows of every instance (keys None) or of those keys that still exist, by key."""
        query = self.model.objects.order_by("pk").values_list(*map(read_as, self.fields))
        if keys is not None:
            query = query.filter(pk__in=keys)
        chunk: list[Row] = []
        for values in query.iterator(READ_CHUNK):
            chunk.append(list(values))
            if len(chunk) >= READ_CHUNK:
                self.complete(chunk)
                yield from chunk
                chunk = []
        if chunk:
            self.complete(chunk)
            yield from chunk

    def converters(self, database: BaseDatabaseWrapper) -> list[Convert]:
        """One function per column, from the JSON value to the value the database stores."""
        own = [converter(field, database) for field in self.fields]
        if self.model is Report:
            # The recording column carries {name, size, sha256}; the table stores the name.
            own[-1] = _recording_name
        return own + [_keep] * len(self.extras)

    def column_checks(self) -> list[checks.Check]:
        """One function per column: None for a value this site accepts, else why not."""
        own = [checks.field_check(field) for field in self.fields]
        if self.model is Report:
            own[-1] = checks.recording_check(self.fields[-1])
        return own + [checks.EXTRA_CHECKS[extra] for extra in self.extras]

    def recording(self, row: Row) -> dict[str, Any] | None:
        """The recording a received report row names, as sent (None for other models)."""
        return row[-1] if self.model is Report and isinstance(row[-1], dict) else None

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


def _upsert(model: type[models.Model], fields: list[models.Field], rows: list[Row]) -> None:
    """Insert or update rows by primary key; each row starts with the fields' database values.

    One INSERT ... ON CONFLICT (id) DO UPDATE statement run with executemany
    (SQLite and PostgreSQL both have it): about three times faster than
    bulk_create(update_conflicts=True), which spends most of its time building
    SQL, and it leaves auto_now fields as they came.
    """
    if not rows:
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
    width = len(fields)
    values = rows if all(len(row) == width for row in rows) else [row[:width] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def _natural_permissions(through: type[models.Model], owner: str, keys: list[int]) -> dict:
    """Owner key -> sorted [app label, codename] of its permissions, for these owners."""
    found: dict[int, list[list[str]]] = defaultdict(list)
    for key, app, codename in through.objects.filter(**{f"{owner}__in": keys}).values_list(
        owner, "permission__content_type__app_label", "permission__codename"
    ):
        found[key].append([app, codename])
    return {key: sorted(natural) for key, natural in found.items()}


# Groups -------------------------------------------------------------------------------

GROUP_FIELDS = _plain_fields(Group)


def _complete_groups(rows: list[Row]) -> None:
    permissions = _natural_permissions(
        Group.permissions.through, "group_id", [row[0] for row in rows]
    )
    for row in rows:
        row.append(permissions.get(row[0], []))


def _upsert_groups(rows: list[Row], permissions: PermissionMap) -> None:
    _upsert(Group, GROUP_FIELDS, rows)
    through = Group.permissions.through
    through.objects.filter(group_id__in=[row[0] for row in rows]).delete()
    through.objects.bulk_create(
        through(group_id=row[0], permission_id=pk)
        for row in rows
        for pk in permissions.ids(row[-1])
    )


# Users --------------------------------------------------------------------------------

USER_FIELDS = _plain_fields(User)


USER_EXTRAS = ("groups", "user_permissions", "api_token")


def _complete_users(rows: list[Row]) -> None:
    """Each user's groups, permissions and API token (API clients keep working after a
    failover; the token's digest travels like the password hash, inside the signed
    stream: the key itself is kept nowhere)."""
    keys = [row[0] for row in rows]
    groups: dict[int, list[int]] = defaultdict(list)
    for user, group in User.groups.through.objects.filter(user_id__in=keys).values_list(
        "user_id", "group_id"
    ):
        groups[user].append(group)
    permissions = _natural_permissions(User.user_permissions.through, "user_id", keys)
    tokens = {
        user: [digest, created]
        for user, digest, created in ApiToken.objects.filter(user_id__in=keys).values_list(
            "user_id", "digest", "created"
        )
    }
    for row in rows:
        row.append(sorted(groups.get(row[0], [])))
        row.append(permissions.get(row[0], []))
        row.append(tokens.get(row[0]))


DIGEST_LENGTH = 64


def _upsert_users(rows: list[Row], permissions: PermissionMap) -> None:
    _upsert(User, USER_FIELDS, rows)
    keys = [row[0] for row in rows]
    groups, perms = User.groups.through, User.user_permissions.through
    groups.objects.filter(user_id__in=keys).delete()
    perms.objects.filter(user_id__in=keys).delete()
    groups.objects.bulk_create(
        groups(user_id=row[0], group_id=group) for row in rows for group in row[-3]
    )
    perms.objects.bulk_create(
        perms(user_id=row[0], permission_id=pk) for row in rows for pk in permissions.ids(row[-2])
    )
    tokens = [
        ApiToken(
            user_id=row[0],
            digest=_token_digest(row[-1][0]),
            created=dt.datetime.fromisoformat(row[-1][1]),
        )
        for row in rows
        if row[-1]
    ]
    ApiToken.objects.filter(Q(user_id__in=keys) | Q(digest__in=[t.digest for t in tokens])).delete()
    ApiToken.objects.bulk_create(tokens)


def _token_digest(value: str) -> str:
    """A token's digest as stored; a primary of the release before sends the key itself
    (sync format 2), which is hashed here and kept no further."""
    if len(value) == DIGEST_LENGTH and all(c in "0123456789abcdef" for c in value):
        return value
    return ApiToken.digest_of(value)


# Site settings ------------------------------------------------------------------------

SETTINGS_FIELDS = _plain_fields(SiteSettings)


def _complete_nothing(_rows: list[Row]) -> None:
    pass


def _upsert_settings(rows: list[Row], _permissions: PermissionMap) -> None:
    _upsert(SiteSettings, SETTINGS_FIELDS, rows)


# API accounts -------------------------------------------------------------------------

# A script's credentials reach the backup with it: the client secret as its hash, and the
# bearer tokens issued to it as their checksums, so a monitor keeps its token through a
# failover. A disabled, deleted or re-keyed account refuses them all, on either site.
API_ACCOUNT_FIELDS = _plain_fields(ApiAccount)
API_ACCOUNT_CLIENT_ID = [field.name for field in API_ACCOUNT_FIELDS].index("client_id")


def _complete_api_accounts(rows: list[Row]) -> None:
    tokens = api_accounts.live_tokens([row[API_ACCOUNT_CLIENT_ID] for row in rows])
    for row in rows:
        row.append(tokens.get(row[API_ACCOUNT_CLIENT_ID], []))


def _upsert_api_accounts(rows: list[Row], _permissions: PermissionMap) -> None:
    _upsert(ApiAccount, API_ACCOUNT_FIELDS, rows)
    accounts = ApiAccount.objects.in_bulk([row[0] for row in rows])
    for row in rows:
        if row[-1]:
            api_accounts.adopt_tokens(accounts[row[0]], row[-1])


# Reports ------------------------------------------------------------------------------

# The recording goes last: on the wire it is {name, size, sha256}, or null.
REPORT_FIELDS = [
    *_plain_fields(Report, exclude=("recording",)),
    Report._meta.get_field("recording"),
]


def file_digest(name: str) -> tuple[int, str]:
    """Size and SHA-256 of a stored file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with default_storage.open(name, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _complete_reports(rows: list[Row]) -> None:
    """The recording's name becomes {name, size, sha256}, or None when there is no file."""
    for row in rows:
        name = row[-1]
        row[-1] = None
        if name and default_storage.exists(name):
            size, sha256 = file_digest(name)
            row[-1] = {"name": name, "size": size, "sha256": sha256}


def _recording_name(value: Any) -> str:
    return value["name"] if isinstance(value, dict) else ""


def _upsert_reports(rows: list[Row], _permissions: PermissionMap) -> None:
    _upsert(Report, REPORT_FIELDS, rows)


# In dependency order: groups before the users that belong to them.
SYNCED: tuple[Synced, ...] = (
    Synced("auth.group", Group, GROUP_FIELDS, ("permissions",), _complete_groups, _upsert_groups),
    Synced(
        "auth.user",
        User,
        USER_FIELDS,
        USER_EXTRAS,
        _complete_users,
        _upsert_users,
    ),
    Synced(
        "appliance.sitesettings",
        SiteSettings,
        SETTINGS_FIELDS,
        (),
        _complete_nothing,
        _upsert_settings,
    ),
    Synced(
        "appliance.apiaccount",
        ApiAccount,
        API_ACCOUNT_FIELDS,
        ("tokens",),
        _complete_api_accounts,
        _upsert_api_accounts,
        since_format=3,
    ),
    Synced("appliance.report", Report, REPORT_FIELDS, (), _complete_reports, _upsert_reports),
)
BY_LABEL = {synced.label: synced for synced in SYNCED}
BY_MODEL = {synced.model: synced for synced in SYNCED}
