"""The primary's change log: every write to synced data leaves a numbered row.

Signals catch save(), delete() and many-to-many changes of the synced models.
Code that writes around them (bulk_create, QuerySet.update) calls record().
The log is written on every site, whatever its role, so a site that becomes
primary already knows what changed on it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator

from django.contrib.auth.models import Group, User
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.authtoken.models import Token

from failover.models import ChangeLog
from failover.sync.codec import BY_MODEL


def record(model: type[Model], keys: Iterable[int], *, deleted: bool = False) -> None:
    """Log writes to `keys` of a synced model (for bulk writes that bypass signals)."""
    label = BY_MODEL[model].label
    ChangeLog.objects.bulk_create(
        [ChangeLog(model=label, key=key, deleted=deleted) for key in keys], batch_size=2000
    )


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
    post_save.disconnect(sender=Token, dispatch_uid="changelog-save-token")
    post_delete.disconnect(sender=Token, dispatch_uid="changelog-delete-token")
    for model in BY_MODEL:
        post_save.disconnect(sender=model, dispatch_uid=f"changelog-save-{model.__name__}")
        post_delete.disconnect(sender=model, dispatch_uid=f"changelog-delete-{model.__name__}")
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.disconnect(sender=through, dispatch_uid=f"changelog-m2m-{through.__name__}")


def prune(keep_days: int = 30) -> int:
    """Forget log rows older than `keep_days`; a backup whose cursor is older resyncs fully."""
    from django.db.models import Max
    from django.utils import timezone

    from failover.models import SyncSource

    old = ChangeLog.objects.filter(at__lt=timezone.now() - dt.timedelta(days=keep_days))
    horizon = old.aggregate(last=Max("id"))["last"]
    if horizon is None:
        return 0
    source = SyncSource.load()
    SyncSource.objects.filter(pk=source.pk).update(horizon=max(source.horizon, horizon))
    deleted, _ = ChangeLog.objects.filter(id__lte=horizon).delete()
    return deleted


def _token_changed(sender: type[Model], instance: Token, raw: bool = False, **_kwargs: object):
    """An API token travels with its user: a new or revoked token is a change of the user."""
    if not raw:
        record(User, [instance.user_id])


def connect() -> None:
    post_save.connect(_token_changed, sender=Token, dispatch_uid="changelog-save-token")
    post_delete.connect(_token_changed, sender=Token, dispatch_uid="changelog-delete-token")
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
