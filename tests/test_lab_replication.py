"""What a client loses when the primary loses power, with continuous replication (namespace lab).

A client in its own namespace writes reports through the shared IP with an API token,
about 50 a second, and notes when each write was acknowledged. The primary loses power
(its processes die, its link goes down); the backup takes over after its timeout and the
client goes on writing to it. Asynchronously, the writes lost are at most those of the
last second before the power went (synchronous mode, in which none is lost, has its own
file: test_lab_synchronous.py). And a backup cut off for a minute catches up by
replication alone.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.lab_fixtures import lab  # noqa: F401
from tests.lab_writing import (  # noqa: F401
    configure,
    in_step,
    ready_for_a_trial,
    tagged,
    token,
    writing,
)
from tests.sites import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.lab]
ASYNCHRONOUS_TRIALS = 3
# Asynchronous replication's promise: the backup is never more than this far behind.
RECOVERY_POINT_SECONDS = 1.0
CUT_SECONDS = 60


def test_asynchronous_replication_loses_at_most_the_last_second_of_writes(lab, writing):  # noqa: F811
    configure(lab, "--sync-interval", "continuous", "--replication", "asynchronous")
    for trial in range(ASYNCHRONOUS_TRIALS):
        seen = writing(f"async{trial}")
        late = {
            name: round(seen["powered_off_at"] - seen["acknowledged_at"][name], 3)
            for name in seen["lost"]
        }
        older = {name: age for name, age in late.items() if age > RECOVERY_POINT_SECONDS}
        assert not older, f"trial {trial}: lost writes acknowledged long before the power went"


def test_a_backup_cut_off_for_a_minute_catches_up_with_no_gap_and_no_full_resync(lab, token):  # noqa: F811
    primary, backup = ready_for_a_trial(lab)
    runs_before = lab.sites[backup].count("failover_syncrun")
    writer = lab.writer(token, tag="cut")
    try:
        assert wait_until(lambda: len(tagged(lab, primary, "cut")) >= 20, 120)
        lab.cut_link(backup)
        cut_at = time.monotonic()
        # The scenario is a minute without the backup; the primary takes writes meanwhile.
        assert wait_until(lambda: time.monotonic() - cut_at >= CUT_SECONDS, CUT_SECONDS + 5)
        lab.cut_link(backup, down=False)
        at_return = len(tagged(lab, primary, "cut"))
        assert wait_until(lambda: len(tagged(lab, primary, "cut")) >= at_return + 20, 120)
    finally:
        lab.cut_link(backup, down=False)
        writer.stdin.close()
        summary = json.loads(writer.stdout.read().strip().splitlines()[-1])
        writer.wait(30)
    assert lab.current() == (primary, backup), "the cut-off backup must not take over"
    assert wait_until(lambda: tagged(lab, backup, "cut") >= set(summary["written"]), 300), (
        f"{len(set(summary['written']) - tagged(lab, backup, 'cut'))} writes never arrived"
    )
    assert wait_until(lambda: in_step(lab), 120)
    assert lab.sites[backup].count("failover_syncrun") == runs_before, "no resync was needed"
    assert lab.sites[primary].dump("appliance.report") == lab.sites[backup].dump("appliance.report")
