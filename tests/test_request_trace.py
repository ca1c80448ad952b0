"""One request id follows Sync Now from the backup's page, through its worker, to the primary.

Both sites log JSON lines (LOG_FORMAT=json); the test reads the log files that
runsite writes for each process.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sites import Site, wait_until

pytestmark = pytest.mark.processes
KEY = "trace test shared key 000001"
PASSWORD = "trace admin password 1"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("trace")
    primary = Site("trace-a", base, LOG_FORMAT="json")
    backup = Site("trace-b", base, LOG_FORMAT="json")
    sites = (primary, backup)
    try:
        for site in sites:
            site.manage("failover", "set-key", stdin=KEY + "\n")
            site.launch()
        # On the primary: the first sync brings the account to the backup.
        primary.manage("ensureadmin", "admin", stdin=PASSWORD + "\n")
        for site in sites:
            site.wait_ready()
        primary.manage(
            "failover", "establish",
            "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
            "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
        )  # fmt: skip
        first = wait_until(lambda: _finished(backup), timeout=300)
        assert first == "succeeded", backup.log("worker.log")
        yield primary, backup
    finally:
        for site in sites:
            site.destroy()


def _finished(site: Site) -> str | None:
    run = site.latest_run()
    return run["status"] if run and run["status"] in ("succeeded", "failed") else None


def lines(site: Site, process: str) -> list[dict[str, Any]]:
    text = site.log(f"{process}.log", whole=True)
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def find(site: Site, process: str, request_id: str, words: str) -> dict[str, Any] | None:
    return next(
        (
            line
            for line in lines(site, process)
            if line.get("request_id") == request_id and words in line["message"]
        ),
        None,
    )


def test_sync_now_on_the_page_is_followed_by_one_id_through_both_sites(pair):
    primary, backup = pair
    before = backup.latest_run()["id"]
    session = backup.session("admin", PASSWORD)
    assert session, "could not log into the backup"
    backup.post_form(session, "/management/failover/", "/management/failover/sync/")

    posted = wait_until(
        lambda: next(
            (
                line
                for line in lines(backup, "web")
                if "POST /management/failover/sync/ 302" in line["message"]
            ),
            None,
        ),
        timeout=60,
    )
    assert posted, backup.log("web.log")
    request_id = posted["request_id"]
    assert (posted["site"], posted["process"]) == ("trace-b", "web")

    done = wait_until(lambda: find(backup, "worker", request_id, "succeeded"), timeout=300)
    assert done, backup.log("worker.log")
    assert done["process"] == "worker"
    assert done["task_id"]
    assert f"Sync #{before + 1} " in done["message"] or "run_sync" in done["message"]

    on_primary = find(primary, "web", request_id, "/api/peer/v1/sync/changes")
    assert on_primary, primary.log("web.log")
    assert (on_primary["site"], on_primary["process"]) == ("trace-a", "web")


def test_every_line_of_every_process_is_json_naming_its_site_and_process(pair):
    primary, _ = pair
    for process in ("web", "worker", "network", "beat"):
        text = primary.log(f"{process}.log", whole=True)
        assert text.strip(), process
        for raw in text.splitlines():
            line = json.loads(raw)
            assert (line["site"], line["process"]) == ("trace-a", process), raw
