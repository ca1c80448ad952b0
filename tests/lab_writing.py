"""A client writing through the shared IP while the primary loses power (namespace lab).

The fixtures and helpers of the replication lab tests: a module-scoped API token and monitor
settings, `writing` (one power-off trial under a client writing about 50 reports a second:
what it wrote, what was acknowledged when, what the new primary holds), and the checks that
both sites are up and in step before a trial.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import SITES, Lab
from tests.sites import wait_until

POLL, TIMEOUT = 1, 2


@pytest.fixture(scope="module")
def token(lab: Lab) -> str:
    lab.configure_monitor(poll=POLL, timeout=TIMEOUT)
    return lab.api_token()


def configure(lab: Lab, *args: str) -> None:
    """`failover configure` on the primary, which hands the settings to the backup (both
    up first: the last trial may have left the old primary powered off)."""
    primary, _backup = ready_for_a_trial(lab)
    lab.sites[primary].manage("failover", "configure", *args)


def tagged(lab: Lab, site: str, tag: str) -> set[str]:
    found = lab.sites[site].rows(
        "SELECT customer_name FROM appliance_report WHERE customer_name LIKE %s", (tag + "-%",)
    )
    return {name for (name,) in found}


def in_step(lab: Lab) -> bool:
    counts = [lab.sites[site].count("appliance_report") for site in SITES]
    return counts[0] == counts[1] and lab.stored_role(lab.current()[1])[0] == "backup"


def ready_for_a_trial(lab: Lab) -> tuple[str, str]:
    """Both sites up, one primary holding the address, the backup following it in step."""
    for site in SITES:
        if lab.sites[site].process is None:
            lab.power_on(site, wait=False)
    for site in SITES:
        lab.sites[site].wait_ready(timeout=180)
    assert wait_until(lambda: len(lab.holders()) == 1 and in_step(lab), 300), (
        f"holders {lab.holders()}, roles {[lab.stored_role(s) for s in SITES]}"
    )
    return lab.current()


def acknowledged(progress: Path) -> int:
    """How many writes the client has had acknowledged so far (its --progress file)."""
    try:
        return progress.read_text().count("\n")
    except FileNotFoundError:
        return 0


@pytest.fixture
def writing(lab: Lab, token: str) -> Iterator:
    """A function that runs one power-off trial under a busy client; returns what it saw.

    The trial waits on the client's acknowledged writes, not on the reports a site
    holds: on a busy machine an answer can come later than the client waits, and that
    report is stored yet not a write the client counts on. So every trial has 40
    writes acknowledged by the old primary before the power goes, and 20 by the new
    one after it has taken the address.
    """

    def trial(tag: str) -> dict:
        primary, backup = ready_for_a_trial(lab)
        progress = lab.base_dir / f"{tag}.acknowledged"
        writer = lab.writer(token, tag=tag, progress=progress)
        try:
            assert wait_until(lambda: acknowledged(progress) >= 40, 120)
            powered_off_at = time.time()
            lab.power_off(primary)
            assert wait_until(lambda: lab.holders() == {backup}, TIMEOUT + 180), lab.holders()
            # The old primary's machine reboots while the client reaches the new primary
            # and goes on writing: it must come back as backup, never claiming the address.
            lab.power_on(primary, wait=False)
            at_takeover = acknowledged(progress)
            assert wait_until(lambda: acknowledged(progress) >= at_takeover + 20, 120)
            assert lab.holders() == {backup}, "the rebooted old primary claimed the address"
        finally:
            writer.stdin.close()
            summary = json.loads(writer.stdout.read().strip().splitlines()[-1])
            writer.wait(30)
        lost = set(summary["written"]) - tagged(lab, backup, tag)
        return {
            "lost": lost,
            "acknowledged_at": summary["acknowledged_at"],
            "powered_off_at": powered_off_at,
            "written": len(summary["written"]),
            "old_primary": primary,
        }

    yield trial
