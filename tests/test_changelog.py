"""The primary's change log: what it records, pausing it, pruning it, and the plan it feeds."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from appliance.models import Report
from failover.models import ChangeLog, SyncSource
from failover.sync import changelog
from failover.sync.stream import Plan, _line

pytestmark = pytest.mark.django_db


def logged() -> list[tuple[str, int, bool]]:
    return list(ChangeLog.objects.order_by("id").values_list("model", "key", "deleted"))


def test_saves_deletes_and_group_membership_are_logged():
    user = User.objects.create_user("rita")
    group = Group.objects.create(name="Tier 2")
    group.user_set.add(user)
    key = user.pk
    user.delete()
    assert logged() == [
        ("auth.user", key, False),
        ("auth.group", group.pk, False),
        ("auth.user", key, False),
        ("auth.user", key, True),
    ]


def test_a_new_or_revoked_api_token_is_a_change_of_its_user():
    from appliance.models import ApiToken

    user = User.objects.create_user("rita")
    ChangeLog.objects.all().delete()
    ApiToken.issue(user)
    ApiToken.objects.get(user=user).delete()
    assert logged() == [("auth.user", user.pk, False), ("auth.user", user.pk, False)]


def test_nothing_is_logged_while_a_sync_applies():
    with changelog.paused():
        Report.objects.create(
            representative="r", customer_name="c", started_at=timezone.now(), outcome="resolved"
        )
    assert logged() == []
    Group.objects.create(name="after")
    assert len(logged()) == 1


def test_pruning_moves_the_horizon_and_a_cursor_behind_it_gets_a_full_sync():
    old = [ChangeLog.objects.create(model="auth.user", key=n) for n in range(3)]
    ChangeLog.objects.filter(pk__in=[row.pk for row in old]).update(
        at=timezone.now() - dt.timedelta(days=40)
    )
    recent = ChangeLog.objects.create(model="auth.user", key=9)
    assert changelog.prune(keep_days=30) == 3
    source = SyncSource.load()
    # Numbered in the order of their keys (all were committed): 1, 2, 3 and 4.
    assert (source.horizon, ChangeLog.objects.get(pk=recent.pk).seq) == (3, 4)
    assert Plan.make(str(source.generation), 1, False).full is True
    assert Plan.make(str(source.generation), 4, False).full is False


def test_a_cursor_from_another_generation_gets_a_full_sync():
    assert Plan.make("00000000-0000-0000-0000-000000000000", 0, False).full is True


def test_stream_lines_keep_microseconds():
    moment = dt.datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=dt.UTC)
    assert b"12:00:00.123456" in _line({"at": moment})


def test_changes_logged_before_numbering_keep_their_ids_and_new_ones_follow():
    """An upgraded site that never served a sync has log rows and no SyncSource row yet."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("failover.migrations.0010_replication")
    users = [User.objects.create_user(name) for name in ("rita", "sam", "tom")]
    ChangeLog.objects.update(seq=None)
    SyncSource.objects.all().delete()
    ids = list(ChangeLog.objects.order_by("id").values_list("id", flat=True))
    migration.number_existing_changes(apps, None)
    assert list(ChangeLog.objects.order_by("id").values_list("seq", flat=True)) == ids
    users[0].save()
    assert changelog.sequence() == ids[-1] + 1
    assert ChangeLog.objects.get(seq=ids[-1] + 1).key == users[0].pk
