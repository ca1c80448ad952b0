"""check_health's enabled_shared_ips on real interfaces: the namespace lab, a script in the client.

The shared address really moves between the sites' namespaces (Linux driver, netlink);
the web answers from the network worker's record of what the interface has. A script
in the client's namespace asks each site, and the shared IP itself, with an API
account's bearer token, and every answer is checked against the site's published
schema and against the kernel's own view of who holds the address.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from tests.command_api import NS, ROLE_CHANGED, as_tree, success_text
from tests.lab import SHARED_IP, SITES, Lab, address
from tests.lab_fixtures import lab  # noqa: F401
from tests.sites import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.lab]


class Script:
    """curl in the client's namespace, holding one API account's credentials."""

    def __init__(self, lab: Lab, client_id: str, secret: str) -> None:  # noqa: F811
        self.lab = lab
        self.basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.tokens: dict[str, str] = {}

    def curl(self, host: str, path: str, *args: str) -> tuple[int, bytes]:
        done = self.lab.in_ns(
            "client", "curl", "-s", "--max-time", "60", "--cacert", str(self.lab.ca.cert_path),
            "-w", "\n%{http_code}", *args, f"https://{host}{path}",
            timeout=90,
        )  # fmt: skip
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body.encode()

    def command(self, host: str, **params: str) -> tuple[int, bytes]:
        if host not in self.tokens:
            status, body = self.curl(
                host, "/oauth2/token", "-H", f"Authorization: Basic {self.basic}",
                "--data", "grant_type=client_credentials",
            )  # fmt: skip
            assert status == 200, body
            self.tokens[host] = json.loads(body)["access_token"]
        return self.curl(
            host,
            "/api/command?" + urllib.parse.urlencode(params),
            "-H",
            f"Authorization: Bearer {self.tokens[host]}",
        )

    def health(self, host: str) -> ET.Element:
        status, body = self.command(host, action="check_health")
        assert status == 200, body
        schema_status, schema = self.curl(host, "/api/command.xsd")
        assert schema_status == 200
        return as_tree(body, schema.decode())


def listed(tree: ET.Element) -> list[str]:
    return [ip.text for ip in tree.findall("bt:enabled_shared_ips/bt:ip", NS)]


@pytest.fixture(scope="module")
def scripts(lab: Lab) -> dict[str, Script]:  # noqa: F811
    """A monitor (read-only) and a runbook (full), made on the primary and synced."""
    primary, backup = lab.current()
    made = lab.sites[primary].shell(
        "import json\nfrom appliance.models import ApiAccount\nmade = {}\n"
        "for name, access in (('monitor', 'read_only'), ('runbook', 'full')):\n"
        "    account = ApiAccount(name=name, access=access)\n"
        "    made[name] = [account.client_id, account.set_new_secret()]\n"
        "    account.save()\n"
        "print(json.dumps(made))"
    )
    lab.sites[backup].manage("failover", "sync-now", "--wait", "--timeout", "300")
    return {name: Script(lab, *credentials) for name, credentials in json.loads(made).items()}


def test_the_site_holding_the_shared_ip_lists_it_and_the_other_does_not(lab, scripts):  # noqa: F811
    primary, backup = lab.current()
    assert wait_until(lambda: lab.holders() == {primary}, 120), lab.holders()
    monitor = scripts["monitor"]

    on_primary = monitor.health(address(primary))
    assert on_primary.findtext("bt:failover_role", namespaces=NS) == "primary"
    assert listed(on_primary) == [SHARED_IP]

    on_backup = monitor.health(address(backup))
    assert on_backup.findtext("bt:failover_role", namespaces=NS) == "backup"
    assert on_backup.find("bt:enabled_shared_ips", NS) is None

    # Through the shared IP the client reaches the primary, which says it holds it.
    through_shared = monitor.health(SHARED_IP)
    assert through_shared.findtext("bt:appliance", namespaces=NS) == primary
    assert listed(through_shared) == [SHARED_IP]


def test_after_set_failover_role_the_address_and_the_reports_move_together(lab, scripts):  # noqa: F811
    primary, backup = lab.current()
    # The token the monitor holds for the shared IP reaches the backup with the next sync.
    lab.sites[backup].manage("failover", "sync-now", "--wait", "--timeout", "300")
    status, body = scripts["runbook"].command(
        address(backup), action="set_failover_role", role="primary"
    )
    assert status == 200, body
    assert success_text(body) == ROLE_CHANGED
    assert wait_until(lambda: lab.holders() == {backup}, 120), lab.holders()

    def reported() -> dict[str, list[str]]:
        return {site: listed(scripts["monitor"].health(address(site))) for site in SITES}

    # The web reads the network worker's record, renewed on every change: it follows the
    # kernel within a reconcile.
    assert wait_until(lambda: reported() == {backup: [SHARED_IP], primary: []}, 60), reported()
    assert lab.holders() == {backup}
    # The monitor polls the shared IP with the token the old primary issued it (in the
    # first test): the new primary has it from the data sync, and answers for the address.
    through_shared = scripts["monitor"].health(SHARED_IP)
    assert through_shared.findtext("bt:appliance", namespaces=NS) == backup
    assert through_shared.findtext("bt:failover_role", namespaces=NS) == "primary"
