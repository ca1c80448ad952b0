"""The Linux shared-IP driver, for real, in network namespaces the test makes."""

from __future__ import annotations

import ipaddress
import json
import struct

import pytest

from failover.system.shared_ip import (
    SharedAddress,
    advertised_target,
    gratuitous_arp,
    icmpv6_checksum,
    neighbour_solicitation,
    unsolicited_neighbour_advertisement,
)
from tests.netns import link, namespaces, require_namespaces
from tests.sites import wait_until

SHARED = "198.51.100.50/24"
SHARED6 = "2001:db8:50::50/64"
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


def drive(space, *steps: str, device: str = "a0", address: str = SHARED) -> dict:
    code = DRIVER.format(address=address, device=device, steps=list(steps))
    return json.loads(space.python(code))


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


# IPv6 ----------------------------------------------------------------------------------


def ipv6_ready(space, device: str) -> bool:
    """The interface's link-local address has passed duplicate address detection."""
    shown = space.ip("-6", "-o", "addr", "show", "dev", device)
    return "fe80::" in shown and "tentative" not in shown


@pytest.fixture
def lab6():
    require_namespaces()
    with namespaces("site", "client") as spaces:
        site, client = spaces["site"], spaces["client"]
        link(site, "a0", client, "c0")
        site.ip("addr", "add", "2001:db8:50::1/64", "dev", "a0", "nodad")
        client.ip("addr", "add", "2001:db8:50::100/64", "dev", "c0", "nodad")
        assert wait_until(lambda: ipv6_ready(site, "a0") and ipv6_ready(client, "c0"), 30)
        yield site, client


def test_an_ipv6_address_is_usable_at_once_without_duplicate_address_detection(lab6):
    site, client = lab6
    assert drive(site, "holds", "add", "holds", address=SHARED6)["holds"] == [False, True]
    shown = site.ip("-6", "-o", "addr", "show", "dev", "a0")
    line = next(line for line in shown.splitlines() if "2001:db8:50::50/64" in line)
    assert "nodad" in line and "tentative" not in line
    assert reachable(client, "2001:db8:50::50")
    assert drive(site, "remove", "holds", address=SHARED6)["holds"] == [False]
    assert not reachable(client, "2001:db8:50::50")


def test_an_unsolicited_neighbour_advertisement_moves_the_clients_entry_at_once(lab6):
    site, client = lab6
    stale_mac = "02:00:00:00:00:99"
    client.ip("neigh", "add", "2001:db8:50::50", "lladdr", stale_mac, "dev", "c0", "nud", "stale")
    assert stale_mac in client.ip("neigh", "show", "2001:db8:50::50")
    assert drive(site, "add", "announce", address=SHARED6)["announced"] == 3
    assert site.mac("a0") in client.ip("neigh", "show", "2001:db8:50::50")


def test_duplicate_address_detection_sees_another_ipv6_holder(lab6):
    site, client = lab6
    drive(site, "add", address=SHARED6)
    found = client.python(
        "from failover.system.shared_ip import LinuxDriver, SharedAddress\n"
        f"print(LinuxDriver().other_holder(SharedAddress.parse({SHARED6!r}, 'c0')))"
    ).strip()
    assert found == site.mac("a0")


def test_duplicate_address_detection_finds_no_one_for_a_free_ipv6_address(lab6):
    _site, client = lab6
    found = client.python(
        "from failover.system.shared_ip import LinuxDriver, SharedAddress\n"
        f"print(LinuxDriver().other_holder(SharedAddress.parse({SHARED6!r}, 'c0'), timeout=0.5))"
    ).strip()
    assert found == "None"


def test_an_interface_with_ipv6_disabled_is_named_in_the_check(lab6):
    site, _client = lab6
    site.run("sysctl", "-qw", "net.ipv6.conf.a0.disable_ipv6=1")
    output = site.python(
        "from failover.system.shared_ip import LinuxDriver, SharedAddress, SharedIPError\n"
        f"shared = SharedAddress.parse({SHARED6!r}, 'a0')\n"
        "try:\n    LinuxDriver().check(shared)\nexcept SharedIPError as error:\n    print(error)\n"
    )
    assert "IPv6 is disabled on a0 (sysctl net.ipv6.conf.a0.disable_ipv6=1)" in output


MAC = bytes.fromhex("020000000001")


def test_the_advertisement_overrides_and_names_the_address_and_its_mac():
    frame = unsolicited_neighbour_advertisement(MAC, "2001:db8::50")
    assert frame[:6] == bytes.fromhex("333300000001") and frame[6:12] == MAC
    assert frame[12:14] == b"\x86\xdd" and frame[21] == 255  # hop limit 255, as ND requires
    source, destination, message = frame[22:38], frame[38:54], frame[54:]
    assert destination == ipaddress.IPv6Address("ff02::1").packed
    assert message[0] == 136 and message[1] == 0
    flags = struct.unpack("!I", message[4:8])[0]
    assert flags == 0x20000000  # Override; neither Solicited (it is not) nor Router
    assert message[8:24] == source == ipaddress.IPv6Address("2001:db8::50").packed
    assert message[24:26] == b"\x02\x01" and message[26:32] == MAC
    assert icmpv6_checksum(source, destination, message) == 0  # the checksum is right
    assert advertised_target(frame) == message[8:24]
    router = unsolicited_neighbour_advertisement(MAC, "2001:db8::50", router=True)
    assert struct.unpack("!I", router[58:62])[0] == 0xA0000000


def test_the_solicitation_asks_from_the_unspecified_address_to_the_solicited_node_group():
    frame = neighbour_solicitation(MAC, "2001:db8::12:3456")
    assert frame[:6] == bytes.fromhex("3333ff123456")
    assert frame[22:38] == bytes(16)
    assert frame[38:54] == ipaddress.IPv6Address("ff02::1:ff12:3456").packed
    assert frame[54] == 135 and frame[62:78] == ipaddress.IPv6Address("2001:db8::12:3456").packed
    assert icmpv6_checksum(frame[22:38], frame[38:54], frame[54:]) == 0
    assert advertised_target(frame) is None  # a solicitation is not an advertisement
