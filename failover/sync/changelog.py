"""The primary's change log: every write to synced data leaves a row, numbered once committed.

Signals catch save(), delete() and many-to-many changes of the synced models.
Code that writes around them (bulk_create, QuerySet.update) announces its rows
(appliance.signals.rows_written), which end up in record(). The log is written
on every site, whatever its role, so a site that becomes primary already knows
what changed on it.

A row's number (`seq`, the sync cursor) is given by `sequence`, to committed
rows only, after every number given before. Primary keys are taken when a
transaction writes, not when it commits: two transactions committing in the
other order would make key 2 visible before key 1, and a reader that moved past
2 would never see 1. Numbers are given in the order rows become visible, so a
reader that has seen number n has seen them all up to n.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator

from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.db.models import Max, Model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import Signal
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from appliance.models import ApiAccount, ApiToken
from failover.models import ChangeLog, SyncSource
from failover.sync.codec import BY_MODEL

# Sent with the ids of the rows record() wrote, in the writer's transaction
# (failover.replication wakes the backup's stream, and in synchronous mode waits).
changes_logged = Signal()
# pg_advisory_xact_lock's key for numbering: one numbering pass at a time.
SEQUENCE_LOCK = 0x66_61_69_6C  # "fail"


def record(model: type[Model], keys: Iterable[int], *, deleted: bool = False) -> None:
    """Log writes to `keys` of a synced model (saves, deletes, and announced bulk writes)."""
    label = BY_MODEL[model].label
    written = ChangeLog.objects.bulk_create(
        [ChangeLog(model=label, key=key, deleted=deleted) for key in keys], batch_size=2000
    )
    if written:
        changes_logged.send(sender=ChangeLog, ids=[row.pk for row in written])


def sequence() -> int:
    """Number the committed rows that have no number yet, after every number given before.

    Returns the last number given so far. One pass at a time: PostgreSQL by an
    advisory lock, SQLite by its write lock (transactions begin IMMEDIATE). Rows
    still uncommitted are invisible here; they get later numbers in a later pass.
    """
    if not ChangeLog.objects.filter(seq__isnull=True).exists():
        return SyncSource.load().last_seq
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCE_LOCK])
        source = SyncSource.load()
        table = connection.ops.quote_name(ChangeLog._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET seq = %s + numbered.n FROM ("  # noqa: S608 - table name
                f"  SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM {table}"
                "   WHERE seq IS NULL"
                f") AS numbered WHERE {table}.id = numbered.id",
                [source.last_seq],
            )
            given = cursor.rowcount
        last = source.last_seq + max(given, 0)
        SyncSource.objects.filter(pk=source.pk).update(last_seq=last)
    return last


def _saved(sender: type[Model], instance: Model, raw: bool = False, **_kwargs: object) -> None:
    if not raw:
        record(sender, [instance.pk])


def _deleted(sender: type[Model], instance: Model, **_kwargs: object) -> None:
    record(sender, [instance.pk], deleted=True)


def _m2m_changed(
    sender: type[Model],
    instance: Model,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    **_kwargs: object,
) -> None:
    if not action.startswith("post_"):
        return
    if not reverse:
        record(type(instance), [instance.pk])
    elif pk_set:
        # group.user_set.add(...): the users changed, seen from the group's side.
        owner = User if sender in (User.groups.through, User.user_permissions.through) else Group
        record(owner, pk_set)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Stop logging while a sync applies the primary's rows on the backup.

    Those rows are the primary's changes, not this site's; and without delete
    receivers Django deletes a whole table with one statement instead of loading
    every row first.
    """
    disconnect()
    try:
        yield
    finally:
        connect()


def disconnect() -> None:
    post_save.disconnect(sender=ApiToken, dispatch_uid="changelog-save-token")
    post_delete.disconnect(sender=ApiToken, dispatch_uid="changelog-delete-token")
    post_save.disconnect(sender=AccessToken, dispatch_uid="changelog-save-access-token")
    for model in BY_MODEL:
        post_save.disconnect(sender=model, dispatch_uid=f"changelog-save-{model.__name__}")
        post_delete.disconnect(sender=model, dispatch_uid=f"changelog-delete-{model.__name__}")
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.disconnect(sender=through, dispatch_uid=f"changelog-m2m-{through.__name__}")


def prune(keep_days: int = 30) -> int:
    """Forget log rows older than `keep_days`; a backup whose cursor is older resyncs fully."""
    sequence()
    old = ChangeLog.objects.filter(
        at__lt=timezone.now() - dt.timedelta(days=keep_days), seq__isnull=False
    )
    horizon = old.aggregate(last=Max("seq"))["last"]
    if horizon is None:
        return 0
    source = SyncSource.load()
    SyncSource.objects.filter(pk=source.pk).update(horizon=max(source.horizon, horizon))
    deleted, _ = ChangeLog.objects.filter(seq__lte=horizon).delete()
    return deleted


def _token_changed(sender: type[Model], instance: ApiToken, raw: bool = False, **_kwargs: object):
    """An API token travels with its user: a new or revoked token is a change of the user."""
    if not raw:
        record(User, [instance.user_id])


def _access_token_changed(
    sender: type[Model], instance: AccessToken, raw: bool = False, **_kwargs: object
) -> None:
    """An API account's bearer token travels with the account: a new one is its change."""
    if not raw:
        clients = Application.objects.filter(pk=instance.application_id).values("client_id")
        record(
            ApiAccount,
            ApiAccount.objects.filter(client_id__in=clients).values_list("pk", flat=True),
        )


def connect() -> None:
    post_save.connect(_token_changed, sender=ApiToken, dispatch_uid="changelog-save-token")
    post_delete.connect(_token_changed, sender=ApiToken, dispatch_uid="changelog-delete-token")
    post_save.connect(
        _access_token_changed, sender=AccessToken, dispatch_uid="changelog-save-access-token"
    )
    for model in BY_MODEL:
        post_save.connect(_saved, sender=model, dispatch_uid=f"changelog-save-{model.__name__}")
        post_delete.connect(
            _deleted, sender=model, dispatch_uid=f"changelog-delete-{model.__name__}"
        )
    for through in (
        User.groups.through,
        User.user_permissions.through,
        Group.permissions.through,
    ):
        m2m_changed.connect(
            _m2m_changed, sender=through, dispatch_uid=f"changelog-m2m-{through.__name__}"
        )
