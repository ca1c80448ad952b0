"""The fault matrix, data half: switchover under writes, a killed worker, a lossy link.

Two real sites in the namespace lab (tests/lab.py); a client in its own namespace
writes through the shared IP. The lab is shared by the module; each test asks
it which site is primary now.
"""

from __future__ import annotations

import json
import time

import pytest

from failover.models import BackupSettings
from tests.lab import SITES, Lab
from tests.lab_fixtures import lab  # noqa: F401
from tests.sites import wait_until
from tests.syncing import (
    assert_in_step,
    assert_unchanged,
    bandwidth_limit,
    finished,
    frozen_pulse,
    live_progress,
    request_sync,
    snapshot,
    wait_for_run,
    wait_for_syncs_in_flight,
    wait_until_dead_run_is_recognised,
)

pytestmark = [pytest.mark.processes, pytest.mark.lab]
TRIALS = 3


def written_on(lab: Lab, site: str, tag: str) -> set[str]:  # noqa: F811
    found = lab.sites[site].rows(
        "SELECT customer_name FROM appliance_report WHERE customer_name LIKE %s", (tag + "-%",)
    )
    return {name for (name,) in found}


def test_become_primary_with_a_final_sync_loses_no_write_of_a_busy_client(lab):  # noqa: F811
    token = lab.api_token()
    lab.configure_monitor(enabled=False)
    for trial in range(TRIALS):
        primary, backup = lab.current()
        tag = f"trial{trial}"
        writer = lab.writer(token, tag=tag)
        try:
            # The switchover starts while the client is busy writing to the primary...
            assert wait_until(lambda p=primary, t=tag: len(written_on(lab, p, t)) >= 15, 120)
            said = lab.sites[backup].manage("failover", "become-primary", "--sync-first")
            assert "now primary" in said.stdout, said.stdout + said.stderr
            assert wait_until(lambda b=backup: lab.holders() == {b}, 60), lab.holders()
            # ...and the client goes on writing, now to the new primary.
            at_switch = len(written_on(lab, backup, tag))
            assert wait_until(
                lambda b=backup, t=tag, n=at_switch: len(written_on(lab, b, t)) >= n + 10, 120
            ), "the client's writes did not reach the new primary"
        finally:
            writer.stdin.close()
            summary = json.loads(writer.stdout.read().strip().splitlines()[-1])
            writer.wait(10)
        written = set(summary["written"])
        assert len(written) >= 25, summary
        lost = written - written_on(lab, backup, tag)
        assert not lost, f"trial {trial}: {len(lost)} acknowledged reports lost: {sorted(lost)[:5]}"
        assert lab.stored_role(primary)[0] == "backup"


def test_a_worker_killed_in_the_middle_of_a_sync_leaves_the_backup_unchanged(lab):  # noqa: F811
    primary, backup = lab.current()
    p, b = lab.sites[primary], lab.sites[backup]
    p.manage("generate_reports", "300", "--seed", "77", "--with-recordings", "3")
    # The previous test's role changes may have left the backup a sync of its own.
    wait_for_syncs_in_flight(b)
    before = snapshot(b)
    with bandwidth_limit(b, 256_000):
        run_id = request_sync(b, full=True)
        assert wait_until(
            lambda: (seen := live_progress(b, run_id)) and seen["bytes"] >= 64 * 1024, 120, 0.05
        ), f"sync #{run_id} never got going: {b.sync_run(run_id)}"
        with frozen_pulse(b, run_id):
            assert_unchanged(b, before)
    wait_until_dead_run_is_recognised(b, run_id)
    next_run = wait_for_run(b, request_sync(b), finished)
    assert next_run["status"] == "succeeded", next_run["error"]
    assert b.sync_run(run_id)["status"] == "failed"
    assert_in_step(p, b)


def test_30_percent_loss_between_the_sites_causes_no_false_failover_at_default_settings(lab):  # noqa: F811
    defaults = {f.name: f.default for f in BackupSettings._meta.fields}
    lab.configure_monitor(
        poll=defaults["poll_interval_seconds"], timeout=defaults["primary_timeout_seconds"]
    )
    primary, backup = lab.current()
    seen = len(lab.events(backup))
    lab.drop("primary", "backup", percent=30)
    try:
        lab.sites[primary].manage("generate_reports", "50", "--seed", "31")
        # A sync still completes over the lossy link (TCP retransmits; bounded retries).
        run = wait_for_run(lab.sites[backup], request_sync(lab.sites[backup]), finished, 180)
        assert run["status"] == "succeeded", run["error"]
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert lab.holders() == {primary}
            assert [lab.stored_role(s)[0] for s in SITES].count("primary") == 1
            time.sleep(0.5)
    finally:
        lab.heal()
    history = lab.events(backup)[seen:]
    assert "failover" not in history and "isolated" not in history, history
    assert lab.current() == (primary, backup)
    assert_in_step(lab.sites[primary], lab.sites[backup])
