"""Clock skew between the sites, in the namespace lab: the backup's clock runs off (libfaketime).

Within the allowed skew (PEER_CLOCK_SKEW_SECONDS, 300 s by default) the pair
works; beyond it every signed call is refused with a sentence that names the
clocks, and the backup does not take a refusing, living primary for a dead one.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.lab import Lab
from tests.lab_fixtures import lab  # noqa: F401
from tests.sites import Site, moment, wait_until
from tests.syncing import finished, request_sync, wait_for_run

pytestmark = [pytest.mark.processes, pytest.mark.lab]
POLL, TIMEOUT = 1, 3


def first_event_at(site: Site, kind: str, *, after: int) -> dt.datetime | None:
    """When the first event of `kind` after the first `after` events was recorded (the
    site's own clock)."""
    found = site.rows("SELECT at FROM failover_failoverevent WHERE kind = %s ORDER BY id", (kind,))
    kinds = site.event_kinds()
    earlier = kinds[:after].count(kind)
    return moment(found[earlier][0]) if len(found) > earlier else None


def last_poll(site: Site) -> dt.datetime | None:
    found = site.rows("SELECT last_poll_at FROM failover_failoverstate WHERE id = 1")
    return moment(found[0][0]) if found and found[0][0] else None


@pytest.fixture(autouse=True)
def clocks_put_right(lab: Lab):  # noqa: F811
    yield
    lab.skew_clock("backup", 0)


def sync_once(lab: Lab) -> dict:  # noqa: F811
    lab.sites["primary"].manage("generate_reports", "5", "--seed", str(time.time_ns() % 997))
    return wait_for_run(lab.sites["backup"], request_sync(lab.sites["backup"]), finished, 120)


def test_a_clock_within_the_allowed_skew_works(lab):  # noqa: F811
    lab.skew_clock("backup", 120)
    run = sync_once(lab)
    assert run["status"] == "succeeded", run["error"]
    assert lab.status("backup")["peer"]["reachable"] is True


def test_a_clock_beyond_the_allowed_skew_is_refused_with_a_clear_error_and_no_failover(lab):  # noqa: F811
    lab.configure_monitor(poll=POLL, timeout=TIMEOUT)
    seen = len(lab.events("backup"))
    lab.skew_clock("backup", 900)
    run = sync_once(lab)
    assert run["status"] == "failed"
    assert "clocks differ by more than the allowed skew" in run["error"], run["error"]
    assert "NTP" in run["error"]
    # The monitor polls on, well past its timeout, and takes the refusing primary for alive.
    backup = lab.sites["backup"]
    refused = wait_until(lambda: first_event_at(backup, "auth_refused", after=seen), 60)
    assert refused, lab.events("backup")[seen:]
    past_the_timeout = refused + dt.timedelta(seconds=TIMEOUT + 3 * POLL)
    assert wait_until(lambda: (last_poll(backup) or refused) > past_the_timeout, 120), (
        f"the monitor stopped polling: last poll {last_poll(backup)}"
    )
    assert lab.stored_role("backup")[0] == "backup"
    assert lab.holders() == {"primary"}
    history = lab.events("backup")[seen:]
    assert "failover" not in history and "auth_refused" in history, history
    assert "clock" in lab.status("backup")["peer"]["error"]
