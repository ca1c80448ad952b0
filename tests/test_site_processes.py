"""A real site: web, Celery worker and beat on a real Redis, as `make run` starts them."""

import os
import signal
from datetime import UTC, datetime

import pytest

from tests.sites import Site, wait_until

pytestmark = pytest.mark.processes


@pytest.fixture
def site(tmp_path):
    running = Site("solo", tmp_path)
    yield running.start()
    running.destroy()


def both_alive(site: Site) -> bool:
    processes = site.status()["processes"]
    return processes["worker"]["alive"] and processes["beat"]["alive"]


def test_the_worker_and_beat_heartbeats_arrive(site):
    assert wait_until(lambda: both_alive(site), timeout=120), site.log("worker.log")
    assert site.get("/login") == 200


def test_a_killed_worker_is_restarted_and_its_heartbeat_resumes(site):
    assert wait_until(lambda: both_alive(site), timeout=120)
    os.killpg(_child_pid(site, "worker"), signal.SIGKILL)
    assert wait_until(lambda: "worker exited with code -9" in site.log(), timeout=60)
    killed_at = datetime.now(UTC)
    assert wait_until(lambda: _child_pid(site, "worker") and _seen_after(site, killed_at), 120)


def _seen_after(site: Site, moment: datetime) -> bool:
    worker = site.status()["processes"]["worker"]
    return worker["alive"] and datetime.fromisoformat(worker["last_seen"]) > moment


def test_stopping_the_site_stops_every_process(site):
    assert wait_until(lambda: both_alive(site), timeout=120)
    children = [_child_pid(site, name) for name in ("web", "worker", "beat")]
    site.stop()
    for pid in children:
        assert wait_until(lambda pid=pid: not _alive(pid), timeout=60), f"pid {pid} still runs"
    assert site.get("/login") == 0


def _child_pid(site: Site, name: str) -> int:
    for line in reversed(site.log().splitlines()):
        if f"started {name} (pid " in line:
            return int(line.split("(pid ")[1].split(")")[0])
    raise AssertionError(f"no pid for {name} in the site's log")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
