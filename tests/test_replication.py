"""Continuous replication's parts, in process: the primary's held answer, acknowledgements,
synchronous writes, the lag, and what a primary keeps when it steps down.

Two real sites following each other are in tests/test_replication_sites.py.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from django.db import transaction
from django.utils import timezone

from appliance.models import Report
from failover import exports, replication, roles
from failover.models import (
    BackupSettings,
    ChangeLog,
    FailoverEvent,
    FailoverState,
    Role,
    SyncCursor,
    SyncSource,
)
from failover.sync import changelog
from tests.conftest import paired_as
from tests.sites import wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("peer_redis")]


def report(name: str = "c") -> Report:
    return Report.objects.create(
        representative="r", customer_name=name, started_at=timezone.now(), outcome="resolved"
    )


def generation() -> str:
    return str(SyncSource.load().generation)


def continuously(*, synchronous: bool = False, timeout: int = 2) -> BackupSettings:
    settings_ = BackupSettings.load()
    settings_.sync_interval = BackupSettings.Interval.CONTINUOUS
    settings_.synchronous_replication = synchronous
    settings_.synchronous_timeout_seconds = timeout
    settings_.save()
    return settings_


# The primary holds a following backup's request until there is a change -------------------


def test_a_request_with_a_change_waiting_is_answered_at_once():
    cursor = changelog.sequence()
    report("new")
    started = time.monotonic()
    plan = replication.changes_for(generation(), cursor, wait=20, limit=100)
    assert (plan.since, plan.upto) == (cursor, cursor + 1)
    assert time.monotonic() - started < 10


@pytest.mark.django_db(transaction=True)
def test_a_request_without_changes_is_held_until_one_commits(monkeypatch):
    # Only the commit's wake-up can answer before the wait ends: no periodic look meanwhile.
    monkeypatch.setattr(replication, "RECHECK_SECONDS", 60)
    cursor = changelog.sequence()
    answered: list[tuple[replication.Plan, float]] = []

    def hold() -> None:
        started = time.monotonic()
        plan = replication.changes_for(generation(), cursor, wait=30, limit=100)
        answered.append((plan, time.monotonic() - started))

    holding = threading.Thread(target=hold)
    holding.start()
    broker = replication.connection()
    assert wait_until(
        lambda: broker.pubsub_numsub(replication.CHANGES_CHANNEL)[0][1] == 1, timeout=30
    ), "the request is not held"
    report("written while held")  # autocommit: its on_commit wake-up runs at once
    holding.join(60)
    plan, took = answered[0]
    assert plan.upto == cursor + 1
    assert took < 25, "answered when the wait ran out, not when the change committed"


def test_a_request_without_changes_is_answered_empty_when_the_wait_ends():
    cursor = changelog.sequence()
    plan = replication.changes_for(generation(), cursor, wait=0, limit=100)
    assert (plan.full, plan.since, plan.upto) == (False, cursor, cursor)


def test_a_cursor_the_log_no_longer_holds_needs_a_full_resync():
    with pytest.raises(replication.ResyncNeeded, match="full resync"):
        replication.changes_for("00000000-0000-0000-0000-000000000000", 0, wait=0, limit=100)


def test_a_batch_holds_at_most_its_limit():
    cursor = changelog.sequence()
    for n in range(5):
        report(str(n))
    plan = replication.changes_for(generation(), cursor, wait=0, limit=2)
    assert (plan.upto, plan.latest) == (cursor + 2, cursor + 5)


# Acknowledgements and the lag, on the primary -------------------------------------------


def test_a_request_for_changes_acknowledges_the_cursor_and_the_lag_follows():
    paired_as(Role.PRIMARY)
    continuously()
    first, second = report("a"), report("b")
    latest = changelog.sequence()
    replication.note_ack(generation(), latest - 1)
    lag = replication.lag()
    assert (lag.changes, lag.connected) == (1, True)
    written = ChangeLog.objects.get(key=second.pk).at
    assert lag.seconds == pytest.approx((timezone.now() - written).total_seconds(), abs=1)
    replication.note_ack(generation(), latest)
    assert replication.lag().in_step
    state = FailoverState.load()
    assert (str(state.peer_acked_generation), state.peer_acked_seq) == (generation(), latest - 1)
    assert first.pk < second.pk


def test_an_acknowledgement_of_another_log_counts_for_nothing():
    paired_as(Role.PRIMARY)
    replication.note_ack("00000000-0000-0000-0000-000000000000", 10)
    assert replication.acknowledged() is None


def test_the_backup_reads_its_lag_from_its_cursor():
    paired_as(Role.BACKUP)
    continuously()
    now = timezone.now()
    SyncCursor.objects.create(
        pk=1, generation=SyncSource.load().generation, seq=7, primary_latest=10,
        pending_since=now - dt.timedelta(seconds=3), contact_at=now,
    )  # fmt: skip
    lag = replication.lag()
    assert (lag.following, lag.changes, lag.connected) == (True, 3, True)
    assert lag.seconds == pytest.approx(3, abs=1)
    assert "It was 3 change(s)" in replication.describe_lag_at_takeover()


# Synchronous mode ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_synchronous_write_waits_for_the_backups_acknowledgement():
    paired_as(Role.PRIMARY)
    row = report("kept")  # written before the mode is on: the test itself does the waiting
    continuously(synchronous=True, timeout=20)
    ids = list(ChangeLog.objects.filter(key=row.pk).values_list("id", flat=True))
    seq = changelog.sequence()
    acked = json.dumps({"generation": generation(), "seq": seq, "at": timezone.now().isoformat()})

    def acknowledge() -> None:
        # What note_ack does in Redis when the backup's next request arrives (a thread of
        # its own may not write the in-memory test database the test holds).
        broker = replication.connection()
        broker.set(replication.ACK_KEY, acked)
        broker.publish(replication.ACKS_CHANNEL, str(seq))

    acknowledging = threading.Timer(0.3, acknowledge)
    acknowledging.start()
    started = time.monotonic()
    assert replication.wait_for_backup(ids) is True
    assert time.monotonic() - started < 15
    assert FailoverState.load().synchronous_suspended_at is None


def test_a_backup_that_does_not_confirm_in_time_suspends_synchronous_mode_until_it_catches_up():
    paired_as(Role.PRIMARY)
    row = report("waits")
    continuously(synchronous=True, timeout=1)
    ids = list(ChangeLog.objects.filter(key=row.pk).values_list("id", flat=True))
    assert replication.wait_for_backup(ids) is False
    assert FailoverState.load().synchronous_suspended_at is not None
    assert FailoverEvent.objects.filter(kind=FailoverEvent.Kind.SYNCHRONOUS_SUSPENDED).count() == 1
    assert replication._synchronous_applies() is False, "suspended: writes do not wait"
    replication.note_ack(generation(), changelog.sequence())
    assert FailoverState.load().synchronous_suspended_at is None
    assert FailoverEvent.objects.filter(kind=FailoverEvent.Kind.SYNCHRONOUS_RESUMED).exists()


@pytest.mark.parametrize(
    ("role", "synchronous", "waits"),
    [(Role.PRIMARY, True, True), (Role.PRIMARY, False, False), (Role.BACKUP, True, False)],
)
def test_only_a_synchronous_primarys_writes_wait(
    monkeypatch, django_capture_on_commit_callbacks, role, synchronous, waits
):
    paired_as(role)
    continuously(synchronous=synchronous)
    waited: list[list[int]] = []
    monkeypatch.setattr(replication, "wait_for_backup", waited.append)
    with django_capture_on_commit_callbacks(execute=True):
        row = report()
    assert bool(waited) is waits
    if waits:
        assert waited == [list(ChangeLog.objects.filter(key=row.pk).values_list("id", flat=True))]


def test_a_transaction_that_logs_many_changes_waits_once_for_all_of_them(
    monkeypatch, django_capture_on_commit_callbacks
):
    paired_as(Role.PRIMARY)
    continuously(synchronous=True)
    waited: list[list[int]] = []
    monkeypatch.setattr(replication, "wait_for_backup", waited.append)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for n in range(5):
            report(str(n))
    assert len(waited) == 1
    assert sorted(waited[0]) == sorted(ChangeLog.objects.values_list("id", flat=True))


# A primary that steps down keeps what its successor lacks -------------------------------


def test_a_primary_stepping_down_exports_the_changes_its_backup_had_not_applied(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    paired_as(Role.PRIMARY)
    applied = report("applied")
    replication.note_ack(generation(), changelog.sequence())
    FailoverState.objects.update(peer_acked_seq=changelog.sequence())
    late, gone = report("late"), report("deleted late")
    gone_key = gone.pk
    gone.delete()

    roles.demote(FailoverState.load().epoch + 1, "the other site took over", "test")

    state = FailoverState.load()
    assert (state.role, state.unsent_changes) == (Role.BACKUP, 2)
    exported = json.loads((exports.exports_dir() / state.unsent_export).read_text())
    assert [r["pk"] for r in exported["records"]] == [late.pk]
    assert exported["deleted"] == [{"model": "appliance.report", "pk": gone_key}]
    assert applied.pk not in [r["pk"] for r in exported["records"]]
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.UNSENT_CHANGES)
    assert "2 change(s)" in event.message and state.unsent_export in event.message


def test_a_primary_whose_backup_had_everything_exports_nothing(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    paired_as(Role.PRIMARY)
    report("applied")
    FailoverState.objects.update(
        peer_acked_generation=SyncSource.load().generation, peer_acked_seq=changelog.sequence()
    )
    roles.demote(FailoverState.load().epoch + 1, "handover", "test")
    assert FailoverState.load().unsent_changes == 0
    assert not FailoverEvent.objects.filter(kind=FailoverEvent.Kind.UNSENT_CHANGES).exists()


def test_a_primary_that_never_heard_from_its_backup_exports_all_its_data(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    paired_as(Role.PRIMARY)
    report("never confirmed")
    roles.demote(FailoverState.load().epoch + 1, "the other site took over", "test")
    state = FailoverState.load()
    assert state.unsent_changes == 1
    dumped = json.loads((exports.exports_dir() / state.unsent_export).read_text())
    assert any(row["model"] == "appliance.report" for row in dumped)
    assert "never confirmed any" in FailoverEvent.objects.get(kind="unsent_changes").message


# The cursor moves only with the batch it was asked for -----------------------------------


def empty_change_set(tmp_path, *, since: int, upto: int, latest: int):
    from failover.sync import receive

    (tmp_path / receive.RECORDS).write_bytes(b"")
    (tmp_path / receive.RECORDINGS).write_bytes(b"")
    header = {
        "type": "header", "format": 2, "generation": generation(), "full": False,
        "since": since, "upto": upto, "latest": latest, "next_change_at": None, "expected": 0,
    }  # fmt: skip
    return receive.Received(header=header, records=0, spool=tmp_path)


def test_a_batch_for_a_cursor_that_moved_meanwhile_is_not_applied(tmp_path):
    from failover.sync import progress, receive

    SyncCursor.objects.create(pk=1, generation=SyncSource.load().generation, seq=6)
    with pytest.raises(receive.SyncFailed, match="cursor moved from 5 to 6") as refused:
        receive.apply(empty_change_set(tmp_path, since=5, upto=7, latest=7), progress.Silent())
    assert refused.value.transient
    assert SyncCursor.load().seq == 6

    receive.apply(empty_change_set(tmp_path, since=6, upto=7, latest=9), progress.Silent())
    cursor = SyncCursor.load()
    assert (cursor.seq, cursor.primary_latest) == (7, 9)
    assert cursor.applied_at is not None


# A site that steps down follows its successor from a known position, or from nothing --------


def test_a_handover_with_nothing_unsent_follows_the_new_primarys_log_from_where_it_stands():
    paired_as(Role.PRIMARY)
    report("applied")
    FailoverState.objects.update(
        peer_acked_generation=SyncSource.load().generation, peer_acked_seq=changelog.sequence()
    )
    theirs = "5f2c1e9a-6f0e-4a57-9d43-2a3b4c5d6e7f"
    roles.demote(
        FailoverState.load().epoch + 1, "handover", "test",
        follow_from={"generation": theirs, "seq": 42},
    )  # fmt: skip
    cursor = SyncCursor.load()
    assert (str(cursor.generation), cursor.seq) == (theirs, 42)


@pytest.mark.parametrize("follow_from", [None, {"generation": "not a uuid", "seq": 3}])
def test_a_primary_stepping_down_otherwise_starts_again_with_a_full_sync(
    settings, tmp_path, follow_from
):
    settings.DATA_DIR = tmp_path
    paired_as(Role.PRIMARY)
    SyncCursor.objects.create(pk=1, generation=SyncSource.load().generation, seq=9)
    roles.demote(FailoverState.load().epoch + 1, "taken over", "test", follow_from=follow_from)
    assert (SyncCursor.load().generation, SyncCursor.load().seq) == (None, 0)


def test_unsent_changes_mean_a_full_sync_even_after_a_handover(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    paired_as(Role.PRIMARY)
    report("never applied by the other site")
    roles.demote(
        FailoverState.load().epoch + 1, "handover", "test",
        follow_from={"generation": "5f2c1e9a-6f0e-4a57-9d43-2a3b4c5d6e7f", "seq": 42},
    )  # fmt: skip
    assert SyncCursor.load().generation is None
