"""The change log's numbers: given to committed changes only, in the order they became visible.

A sync's cursor is such a number. Keys are taken when a transaction writes, not when it
commits: on PostgreSQL two writers can commit in the other order, and a reader that
took the keys for the cursor could move past a change it had not seen yet. Numbering
at read time, committed rows only, rules that out (the tests marked PostgreSQL run in
CI's second pass, where the suite runs against a PostgreSQL server).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.models import Report
from failover.models import ChangeLog, SyncSource
from failover.sync import changelog
from failover.sync.stream import Plan, lines

pytestmark = pytest.mark.django_db


def report(name: str) -> Report:
    return Report.objects.create(
        representative="r", customer_name=name, started_at=timezone.now(), outcome="resolved"
    )


def numbers() -> list[tuple[int, int | None]]:
    return list(ChangeLog.objects.order_by("id").values_list("key", "seq"))


def test_committed_changes_are_numbered_in_key_order_after_every_number_before():
    first, second = report("a"), report("b")
    assert numbers() == [(first.pk, None), (second.pk, None)]
    assert changelog.sequence() == 2
    assert numbers() == [(first.pk, 1), (second.pk, 2)]
    third = report("c")
    assert changelog.sequence() == 3
    assert numbers()[-1] == (third.pk, 3)
    assert changelog.sequence() == 3, "nothing new: nothing numbered"


def test_numbers_go_on_after_the_numbered_rows_were_pruned():
    report("a")
    changelog.sequence()
    ChangeLog.objects.all().delete()
    report("b")
    assert changelog.sequence() == 2
    assert SyncSource.load().last_seq == 2


def test_a_plan_reads_changes_by_number_and_at_most_its_limit():
    for name in "abcde":
        report(name)
    generation = str(SyncSource.load().generation)
    plan = Plan.make(generation, 1, False, limit=2)
    assert (plan.full, plan.since, plan.upto, plan.latest) == (False, 1, 3, 5)
    assert Plan.make(generation, 5, False).upto == 5


def keys_streamed(plan: Plan) -> set[int]:
    """The report keys a plan's stream carries."""
    import orjson

    carried = set()
    for line, records in lines(plan):
        if records:
            row = orjson.loads(line)
            carried.add(row[0] if isinstance(row, list) else row["key"])
    return carried


needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL commits concurrent writers in any order; SQLite has one writer at a "
    "time (CI's second pass runs this against a PostgreSQL server)",
)


class Writer(threading.Thread):
    """A transaction of its own, on its own connection, that writes a report and then
    waits, holding it open, until told to commit (or to roll back)."""

    def __init__(self, name: str) -> None:
        super().__init__(daemon=True)
        self.customer = name
        self.written = threading.Event()
        self.done = threading.Event()
        self.roll_back = False
        self.key: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                self.key = report(self.customer).pk
                self.written.set()
                assert self.done.wait(30), "never told to end"
                if self.roll_back:
                    transaction.set_rollback(True)
        except BaseException as error:  # reported by the test
            self.error = error
            self.written.set()
        finally:
            connections.close_all()

    def finish(self, *, roll_back: bool = False) -> int:
        self.roll_back = roll_back
        self.done.set()
        self.join(30)
        assert self.error is None, self.error
        return self.key


@pytest.mark.django_db(transaction=True)
@needs_postgresql
@pytest.mark.parametrize("round_", range(10))
def test_a_change_that_commits_after_a_later_key_is_not_skipped(round_):
    generation = str(SyncSource.load().generation)
    cursor = changelog.sequence()
    early, late = Writer(f"early {round_}"), Writer(f"late {round_}")
    early.start()
    assert early.written.wait(30)
    late.start()
    assert late.written.wait(30)
    late_key = late.finish()  # the later key commits first
    plan = Plan.make(generation, cursor, False)
    assert keys_streamed(plan) == {late_key}
    early_key = early.finish()
    after = Plan.make(generation, plan.upto, False)
    assert keys_streamed(after) == {early_key}, "the change that committed last was skipped"


# Any interleaving: writers open, write, commit or roll back in any order, and a sync reads
# between any two steps; the backup (here, the keys it received) ends equal to the primary.

STEP = st.tuples(st.sampled_from(["open", "commit", "rollback", "sync"]), st.integers(0, 2))
NO_FIXTURE_RESET = [HealthCheck.function_scoped_fixture]


@pytest.mark.django_db(transaction=True)
@needs_postgresql
@settings(max_examples=30, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(steps=st.lists(STEP, min_size=1, max_size=12))
def test_after_any_interleaving_the_backup_holds_exactly_the_committed_changes(steps):
    generation = str(SyncSource.load().generation)
    cursor = changelog.sequence()
    received: set[int] = set()
    writers: dict[int, Writer] = {}
    committed: set[int] = set()

    def sync() -> None:
        nonlocal cursor
        plan = Plan.make(generation, cursor, False)
        received.update(keys_streamed(plan))
        cursor = plan.upto

    def end(slot: int, *, roll_back: bool) -> None:
        if writer := writers.pop(slot, None):
            key = writer.finish(roll_back=roll_back)
            if not roll_back:
                committed.add(key)

    for action, slot in steps:
        if action == "open" and slot not in writers:
            writers[slot] = Writer(f"slot {slot}")
            writers[slot].start()
            assert writers[slot].written.wait(30)
        elif action in ("commit", "rollback"):
            end(slot, roll_back=action == "rollback")
        elif action == "sync":
            sync()
    for slot in list(writers):
        end(slot, roll_back=False)
    sync()
    assert received == committed, f"never sent {committed - received}, sent {received - committed}"
