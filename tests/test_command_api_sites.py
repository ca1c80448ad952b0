"""The Command API between two real sites, driven the way BeyondTrust's clients drive it.

A script holds an API account made on the primary: it posts the client ID and
secret to /oauth2/token (HTTP Basic), sends the bearer token to /api/command, and
reads the XML after validating it against the schema the site publishes. One test
per set_failover_role example of BeyondTrust's documentation, each on the roles the
previous one left. The shared IP is handled by the recording driver (both sites
share one machine's loopback); the lab moves a real address (tests/test_lab_command_api.py).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from tests.command_api import (
    NS,
    ROLE_CHANGED,
    SYNC_STARTED,
    as_dict,
    as_tree,
    error_text,
    success_text,
)
from tests.sites import Site, shared_ip_pair, wait_until

pytestmark = pytest.mark.processes
KEY = "command api sites shared key 1"
SHARED = "198.51.100.60/24"
# Only a broken switchover takes this long.
SWITCH_BUDGET = 240


def call(
    site: Site, path: str, *, data: dict | None = None, headers: dict | None = None
) -> tuple[int, bytes]:
    """One HTTP request to the site (a POST when `data` is given, form-encoded)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(site.url + path, data=body, headers=headers or {})  # noqa: S310 - the test's own site
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Script:
    """A client of the Command API, holding one API account's credentials."""

    def __init__(self, client_id: str, secret: str) -> None:
        self.basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.tokens: dict[str, str] = {}

    def token(self, site: Site) -> str:
        status, body = call(
            site,
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {self.basic}"},
        )
        assert status == 200, body
        answer = json.loads(body)
        assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 3600)
        return answer["access_token"]

    def command(
        self, site: Site, *, post: bool = False, token: str = "", **params: str
    ) -> tuple[int, bytes]:
        """Run a command with `token`, or the one this site issued (asked for the first time)."""
        if not token and site.name not in self.tokens:
            self.tokens[site.name] = self.token(site)
        headers = {"Authorization": f"Bearer {token or self.tokens[site.name]}"}
        if post:
            return call(site, "/api/command", data=params, headers=headers)
        return call(site, "/api/command?" + urllib.parse.urlencode(params), headers=headers)


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """A pair with a shared IP, and two API accounts made on the first site (the primary)."""
    with shared_ip_pair(tmp_path_factory, KEY, SHARED) as pair:
        yield pair


@pytest.fixture(scope="module")
def accounts(sites) -> dict[str, Script]:
    """A read-only account (the monitor) and a full one (the runbook), made on the primary
    as the API Accounts page makes them, and synced to the backup."""
    primary, backup = sites
    made = primary.shell(
        "import json\nfrom appliance.models import ApiAccount\nmade = {}\n"
        "for name, access in (('monitor', 'read_only'), ('runbook', 'full')):\n"
        "    account = ApiAccount(name=name, access=access)\n"
        "    made[name] = [account.client_id, account.set_new_secret()]\n"
        "    account.save()\n"
        "print(json.dumps(made))"
    )
    backup.manage("failover", "sync-now", "--wait", "--timeout", "300")
    return {name: Script(*credentials) for name, credentials in json.loads(made).items()}


@pytest.fixture
def pair(sites, accounts):
    """(primary, backup) as the sites say now, the primary holding the shared IP."""
    for site in sites:
        if site.process is None:
            site.start()

    def settled():
        roles = {site: site.role() for site in sites}
        primaries = [site for site in sites if roles[site] == "primary"]
        return len(primaries) == 1 and holds(primaries[0]) and primaries[0]

    primary = wait_until(settled, timeout=120)
    assert primary, {site.name: site.role() for site in sites}
    return primary, next(site for site in sites if site is not primary)


def holds(site: Site) -> bool:
    return f"{SHARED} on lo" in site.recorded_shared_ips()


def published_schema(site: Site) -> str:
    status, body = call(site, "/api/command.xsd")
    assert status == 200
    return body.decode()


def health(script: Script, site: Site) -> dict:
    """check_health as the first public client reads it, after checking it against the
    schema this very site publishes."""
    status, body = script.command(site, action="check_health")
    assert status == 200, body
    return as_dict(body, published_schema(site))["health_check"]


def health_tree(script: Script, site: Site) -> ET.Element:
    """check_health as the second public client reads it (ElementTree, namespace map)."""
    status, body = script.command(site, post=True, action="check_health")
    assert status == 200, body
    return as_tree(body, published_schema(site))


def swapped(old_primary: Site, new_primary: Site) -> bool:
    return (
        new_primary.role() == "primary"
        and old_primary.role() == "backup"
        and holds(new_primary)
        and not holds(old_primary)
    )


def reports(site: Site) -> list:
    return site.dump("appliance.report")


def test_api_accounts_reach_the_backup_and_each_site_reports_its_part(pair, accounts):
    primary, backup = pair
    columns = "SELECT name, access, enabled, client_id, secret_hash FROM appliance_apiaccount"
    assert backup.rows(columns + " ORDER BY name") == primary.rows(columns + " ORDER BY name")
    monitor = accounts["monitor"]

    on_primary = health(monitor, primary)
    assert on_primary["success"] == "1", on_primary.get("error_message")
    assert on_primary["appliance"]["#text"] == primary.name
    assert on_primary["failover_role"] == "primary"
    assert on_primary["enabled_shared_ips"] == {"ip": "198.51.100.60"}
    assert on_primary["last_data_sync_status"] == "succeeded"

    tree = health_tree(monitor, backup)
    assert tree.findtext("bt:appliance", namespaces=NS) == backup.name
    assert tree.find("bt:appliance", NS).get("id") != on_primary["appliance"]["@id"]
    assert tree.findtext("bt:failover_role", namespaces=NS) == "backup"
    assert tree.find("bt:enabled_shared_ips", NS) is None
    assert tree.findtext("bt:last_data_sync_status", namespaces=NS) == "succeeded"
    assert int(tree.find("bt:last_data_sync_time", NS).get("ts")) > 0

    # Read-only: the monitor may not change roles, on either site.
    status, body = monitor.command(backup, action="set_failover_role", role="primary")
    assert status == 403
    assert "full access" in error_text(body, published_schema(backup))
    assert backup.role() == "backup"


def test_role_primary_with_data_sync_first_swaps_the_roles_after_a_final_sync(pair, accounts):
    """BeyondTrust: `set_failover_role&role=primary&data_sync_first=1`, on the backup."""
    primary, backup = pair
    primary.generate_reports(20, "--seed", "13")
    # A monitor polls the shared IP with the one token the primary issued it.
    monitor = accounts["monitor"]
    held = monitor.token(primary)
    status, body = accounts["runbook"].command(
        backup, action="set_failover_role", role="primary", data_sync_first="1"
    )
    assert status == 202, body
    assert success_text(body, published_schema(backup)) == SYNC_STARTED
    assert wait_until(lambda: swapped(primary, backup), SWITCH_BUDGET), backup.log("worker.log")
    assert reports(backup) == reports(primary), "the final sync brought every report"
    # The monitor keeps working with its token: the final sync brought it to the new
    # primary, which now answers on the shared IP and lists it.
    status, body = monitor.command(backup, token=held, action="check_health")
    assert status == 200, body
    after = as_dict(body, published_schema(backup))["health_check"]
    assert (after["appliance"]["#text"], after["failover_role"]) == (backup.name, "primary")
    assert after["enabled_shared_ips"] == {"ip": "198.51.100.60"}
    status, body = accounts["runbook"].command(backup, action="set_failover_role", role="primary")
    assert status == 409
    assert error_text(body) == "This site is already primary."


def test_role_backup_with_force_hands_the_role_to_the_other_site(pair, accounts):
    """BeyondTrust: `set_failover_role&role=backup&force=1`, on the primary (the other
    site answers, so it takes over)."""
    primary, backup = pair
    status, body = accounts["runbook"].command(
        primary, action="set_failover_role", role="backup", force="1"
    )
    assert status == 200, body
    assert success_text(body, published_schema(primary)) == ROLE_CHANGED
    assert primary.role() == "backup", "the answer comes once this site has stepped down"
    assert wait_until(lambda: swapped(primary, backup), SWITCH_BUDGET), backup.log("worker.log")
    tree = health_tree(accounts["monitor"], primary)
    assert tree.findtext("bt:failover_role", namespaces=NS) == "backup"
    assert tree.find("bt:enabled_shared_ips", NS) is None


def test_role_backup_with_force_and_data_sync_first_syncs_before_the_other_takes_over(
    pair, accounts
):
    """BeyondTrust: `set_failover_role&role=backup&force=1&data_sync_first=1`, on the primary."""
    primary, backup = pair
    primary.generate_reports(20, "--seed", "14")
    status, body = accounts["runbook"].command(
        primary, post=True, action="set_failover_role", role="backup", force="1",
        data_sync_first="1",
    )  # fmt: skip
    assert status == 202, body
    assert success_text(body, published_schema(primary)) == SYNC_STARTED
    assert wait_until(lambda: swapped(primary, backup), SWITCH_BUDGET), backup.log("worker.log")
    assert reports(backup) == reports(primary), "the final sync brought every report"
    final = backup.latest_run()
    assert (final["trigger"], final["status"]) == ("become_primary", "succeeded")


def test_role_backup_with_force_steps_down_alone_when_the_other_site_is_gone(pair, accounts):
    """`role=backup&force=1` as its documentation puts it: "even if the peer cannot be
    contacted". Then the other site, back, is made primary with `role=primary`."""
    primary, backup = pair
    backup.stop()
    runbook = accounts["runbook"]
    status, body = runbook.command(primary, action="set_failover_role", role="backup")
    assert status == 409
    assert "Use Force to step down anyway" in error_text(body)
    assert primary.role() == "primary"

    status, body = runbook.command(primary, action="set_failover_role", role="backup", force="1")
    assert status == 200, body
    assert success_text(body) == ROLE_CHANGED
    assert primary.role() == "backup"
    assert wait_until(lambda: not holds(primary), SWITCH_BUDGET)

    backup.start()
    status, body = runbook.command(backup, action="set_failover_role", role="primary")
    assert status == 200, body
    assert success_text(body) == ROLE_CHANGED
    assert wait_until(lambda: swapped(primary, backup), SWITCH_BUDGET), backup.log("worker.log")
