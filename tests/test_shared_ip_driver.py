"""The Linux shared-IP driver, for real, in network namespaces the test makes."""

from __future__ import annotations

import json

import pytest

from failover.system.shared_ip import SharedAddress, gratuitous_arp
from tests.netns import link, namespaces, require_namespaces

SHARED = "198.51.100.50/24"
DRIVER = """
import json
from failover.system.shared_ip import LinuxDriver, SharedAddress
shared = SharedAddress.parse({address!r}, {device!r})
driver = LinuxDriver()
result = {{}}
for step in {steps!r}:
    if step == "holds":
        result.setdefault("holds", []).append(driver.holds(shared))
    elif step == "announce":
        result["announced"] = driver.announce(shared)
    else:
        getattr(driver, step)(shared)
print(json.dumps(result))
"""


def reachable(space, address: str) -> bool:
    """ICMP from inside the namespace, through the product's own connectivity probe."""
    code = (
        "from failover.system.probe import Target, probe\n"
        f"print(probe([Target({address!r})], timeout=1)[0].reachable)"
    )
    return space.python(code).strip() == "True"


def drive(space, *steps: str, device: str = "a0") -> dict:
    return json.loads(space.python(DRIVER.format(address=SHARED, device=device, steps=list(steps))))


@pytest.fixture
def lab():
    require_namespaces()
    with namespaces("site", "client") as spaces:
        site, client = spaces["site"], spaces["client"]
        link(site, "a0", client, "c0")
        site.ip("addr", "add", "198.51.100.1/24", "dev", "a0")
        client.ip("addr", "add", "198.51.100.100/24", "dev", "c0")
        yield site, client


def test_it_adds_and_removes_the_address_and_says_whether_it_holds_it(lab):
    site, client = lab
    assert drive(site, "holds", "add", "holds", "add", "holds")["holds"] == [False, True, True]
    assert reachable(client, "198.51.100.50")
    assert drive(site, "remove", "holds", "remove", "holds")["holds"] == [False, False]
    assert not reachable(client, "198.51.100.50")


def test_a_gratuitous_arp_moves_the_clients_neighbour_entry_at_once(lab):
    site, client = lab
    stale_mac = "02:00:00:00:00:99"
    client.ip("neigh", "add", "198.51.100.50", "lladdr", stale_mac, "dev", "c0", "nud", "stale")
    assert stale_mac in client.ip("neigh", "show", "198.51.100.50")
    result = drive(site, "add", "announce")
    assert result["announced"] == 3
    assert site.mac("a0") in client.ip("neigh", "show", "198.51.100.50")


def test_an_unknown_interface_is_named_in_the_error(lab):
    site, _client = lab
    output = site.python(
        "from failover.system.shared_ip import LinuxDriver, SharedAddress, SharedIPError\n"
        f"shared = SharedAddress.parse({SHARED!r}, 'nosuch0')\n"
        "try:\n    LinuxDriver().add(shared)\nexcept SharedIPError as error:\n    print(error)\n"
    )
    assert "there is no interface nosuch0" in output


def test_the_gratuitous_arp_frame_announces_the_address_as_its_own():
    frame = gratuitous_arp(bytes.fromhex("020000000001"), "198.51.100.50")
    assert frame[:6] == b"\xff" * 6
    assert frame[12:14] == b"\x08\x06"
    assert frame[20:22] == b"\x00\x01"  # an ARP request
    assert frame[28:32] == frame[38:42] == bytes([198, 51, 100, 50])


def test_a_shared_address_reads_as_address_and_interface():
    shared = SharedAddress.parse("198.51.100.50/24", "eth0")
    assert str(shared) == "198.51.100.50/24 on eth0"
    assert shared.ip == "198.51.100.50"


def test_duplicate_address_detection_sees_another_holder(lab):
    site, client = lab
    drive(site, "add")
    found = client.python(
        "from failover.system.shared_ip import LinuxDriver, SharedAddress\n"
        f"print(LinuxDriver().other_holder(SharedAddress.parse({SHARED!r}, 'c0')))"
    ).strip()
    assert found == site.mac("a0")


def test_duplicate_address_detection_finds_no_one_for_a_free_address(lab):
    _site, client = lab
    found = client.python(
        "from failover.system.shared_ip import LinuxDriver, SharedAddress\n"
        f"print(LinuxDriver().other_holder(SharedAddress.parse({SHARED!r}, 'c0'), timeout=0.5))"
    ).strip()
    assert found == "None"
