"""The shared IP: hold it on an interface, let it go, announce it.

`LinuxDriver` adds and removes the address through netlink (pyroute2) and
announces a newly held address from a raw AF_PACKET socket, so neighbours
switch to this machine's MAC at once instead of after their cache expires
(tens of seconds): an IPv4 address with gratuitous ARP, an IPv6 address with
unsolicited Neighbour Advertisements carrying the Override flag (RFC 4861
7.2.6). An IPv6 address is added without duplicate address detection
(IFA_F_NODAD), which would leave it unusable ("tentative") for its first
second; the pair does its own detection of another holder instead, with ARP
probes (IPv4) or a Neighbour Solicitation from the unspecified address (IPv6).
`RecordingDriver` only records the wish: it is for the local demo pair on one
machine and says so wherever it is used.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings

ARP_ETHERTYPE = 0x0806
IPV6_ETHERTYPE = 0x86DD
BROADCAST = b"\xff" * 6
ICMPV6 = 58
NEIGHBOUR_SOLICITATION = 135
NEIGHBOUR_ADVERTISEMENT = 136
# Neighbour Advertisement flags (RFC 4861 4.4): Router, Solicited, Override.
NA_ROUTER, NA_SOLICITED, NA_OVERRIDE = 0x80000000, 0x40000000, 0x20000000
ALL_NODES = ipaddress.IPv6Address("ff02::1")
# IFA_F_NODAD (linux/if_addr.h): no duplicate address detection for this address.
IFA_F_NODAD = 0x02


class SharedIPError(Exception):
    """The address could not be managed; the message says what and why, for the page."""


@dataclass(frozen=True)
class SharedAddress:
    """An address with its prefix, on a named interface: "192.0.2.10/24 on eth0"."""

    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    device: str

    @classmethod
    def parse(cls, address: str, device: str) -> SharedAddress:
        return cls(ipaddress.ip_interface(address), device)

    @property
    def ip(self) -> str:
        return str(self.interface.ip)

    @property
    def version(self) -> int:
        return self.interface.version

    @property
    def announcement(self) -> str:
        """What announces it to the neighbours, in words."""
        return "gratuitous ARP" if self.version == 4 else "unsolicited neighbour advertisements"

    def __str__(self) -> str:
        return f"{self.interface.with_prefixlen} on {self.device}"


class Driver(Protocol):
    name: str
    real: bool

    def holds(self, shared: SharedAddress) -> bool: ...

    def add(self, shared: SharedAddress) -> None: ...

    def remove(self, shared: SharedAddress) -> None: ...

    def announce(self, shared: SharedAddress, count: int = 3) -> int: ...

    def other_holder(self, shared: SharedAddress, timeout: float = 1.0) -> str | None: ...

    def check(self, shared: SharedAddress) -> None: ...


def _problem(action: str, shared: SharedAddress, error: BaseException) -> SharedIPError:
    code = getattr(error, "code", None) or getattr(error, "errno", None)
    reason = {
        errno.EPERM: "operation not permitted (the worker needs CAP_NET_ADMIN)",
        errno.EACCES: "permission denied (the worker needs CAP_NET_RAW)",
        errno.ENODEV: "no such interface",
        errno.ENETDOWN: "the interface is down",
    }.get(code, str(error))
    return SharedIPError(
        f"Cannot {action} {shared.interface.with_prefixlen} on {shared.device}: {reason}."
    )


class LinuxDriver:
    """The real thing: netlink for the address, a raw socket for gratuitous ARP."""

    name = "linux"
    real = True

    def _index(self, ipr: object, shared: SharedAddress) -> int:
        found = ipr.link_lookup(ifname=shared.device)
        if not found:
            raise SharedIPError(
                f"Cannot manage {shared.ip}: there is no interface {shared.device}."
            )
        return found[0]

    def holds(self, shared: SharedAddress) -> bool:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            index = self._index(ipr, shared)
            family = socket.AF_INET if shared.interface.version == 4 else socket.AF_INET6
            for entry in ipr.get_addr(family=family, index=index):
                if entry.get_attr("IFA_ADDRESS") == shared.ip:
                    return True
        return False

    def add(self, shared: SharedAddress) -> None:
        self._address("add", shared, done={errno.EEXIST})

    def remove(self, shared: SharedAddress) -> None:
        self._address("del", shared, done={errno.EADDRNOTAVAIL, errno.ENOENT})

    def _address(self, command: str, shared: SharedAddress, *, done: set[int]) -> None:
        """Add or delete the address; an error saying it is already so counts as success."""
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        # An IPv6 address skips duplicate address detection (as keepalived's do): with
        # it the address would be "tentative", unusable for a second after a takeover.
        flags = {"flags": IFA_F_NODAD} if command == "add" and shared.version == 6 else {}
        with IPRoute() as ipr:
            index = self._index(ipr, shared)
            try:
                ipr.addr(
                    command,
                    index=index,
                    address=shared.ip,
                    prefixlen=shared.interface.network.prefixlen,
                    **flags,
                )
            except NetlinkError as error:
                if error.code not in done:
                    raise _problem("add" if command == "add" else "remove", shared, error) from None

    def check(self, shared: SharedAddress) -> None:
        """Could this machine hold the address? Raises SharedIPError saying why not.

        The interface must exist, and for an IPv6 address have IPv6 enabled. A
        backup checks this every period, so a problem shows before a takeover.
        """
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            self._index(ipr, shared)
        if shared.version == 6 and _sysctl_ipv6(shared.device, "disable_ipv6") == "1":
            raise SharedIPError(
                f"Cannot hold {shared.interface.with_prefixlen} on {shared.device}: IPv6 is "
                f"disabled on {shared.device} (sysctl net.ipv6.conf.{shared.device}.disable_ipv6"
                "=1). Enable it, or leave the IPv6 shared address empty."
            )

    def other_holder(self, shared: SharedAddress, timeout: float = 1.0) -> str | None:
        """Duplicate address detection: the MAC of another machine answering for the address.

        IPv4: an ARP probe; IPv6: a Neighbour Solicitation from the unspecified
        address, as duplicate address detection sends it (RFC 4862 5.4), which a
        holder answers with an advertisement to all nodes. Listens for `timeout`
        seconds.
        """
        if shared.version == 6:
            return self._other_holder6(shared, timeout)
        wanted = socket.inet_aton(shared.ip)
        try:
            with socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ARP_ETHERTYPE)
            ) as raw:
                raw.bind((shared.device, 0))
                mac = raw.getsockname()[4][:6]
                raw.settimeout(0.1)
                deadline = time.monotonic() + timeout
                raw.send(arp_probe(mac, shared.ip))
                while time.monotonic() < deadline:
                    try:
                        frame = raw.recv(128)
                    except TimeoutError:
                        continue
                    sender_mac, sender_ip = frame[22:28], frame[28:32]
                    is_reply = frame[20:22] == b"\x00\x02"
                    if is_reply and sender_ip == wanted and sender_mac != mac:
                        return sender_mac.hex(":")
        except OSError as error:
            raise _problem("probe for", shared, error) from None
        return None

    def _other_holder6(self, shared: SharedAddress, timeout: float) -> str | None:
        target = shared.interface.ip.packed
        try:
            with socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW, socket.htons(IPV6_ETHERTYPE)
            ) as raw:
                raw.bind((shared.device, 0))
                mac = raw.getsockname()[4][:6]
                raw.settimeout(0.1)
                deadline = time.monotonic() + timeout
                raw.send(neighbour_solicitation(mac, shared.ip))
                while time.monotonic() < deadline:
                    try:
                        frame = raw.recv(2048)
                    except TimeoutError:
                        continue
                    if advertised_target(frame) == target and frame[6:12] != mac:
                        return frame[6:12].hex(":")
        except OSError as error:
            raise _problem("probe for", shared, error) from None
        return None

    def announce(self, shared: SharedAddress, count: int = 3) -> int:
        """Send `count` announcements of the address; returns how many went.

        IPv4: gratuitous ARP requests. IPv6: unsolicited Neighbour Advertisements
        to all nodes with the Override flag, so a neighbour that has the old
        holder's MAC in its cache replaces it (and the Router flag when this
        machine forwards IPv6, so a router stays known as one).
        """
        ethertype = ARP_ETHERTYPE if shared.version == 4 else IPV6_ETHERTYPE
        try:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype)) as raw:
                raw.bind((shared.device, 0))
                mac = raw.getsockname()[4][:6]
                if shared.version == 4:
                    frame = gratuitous_arp(mac, shared.ip)
                else:
                    router = _sysctl_ipv6(shared.device, "forwarding") == "1"
                    frame = unsolicited_neighbour_advertisement(mac, shared.ip, router=router)
                for _ in range(count):
                    raw.send(frame)
        except OSError as error:
            raise _problem("announce", shared, error) from None
        return count


def _sysctl_ipv6(device: str, name: str) -> str:
    """One of the interface's IPv6 settings ("" when the kernel has none for it)."""
    try:
        return Path(f"/proc/sys/net/ipv6/conf/{device}/{name}").read_text().strip()
    except OSError:
        return ""


def arp_probe(mac: bytes, ip: str) -> bytes:
    """An ARP probe (RFC 5227): who has `ip`? asked with sender address 0.0.0.0."""
    address = socket.inet_aton(ip)
    header = BROADCAST + mac + struct.pack("!H", ARP_ETHERTYPE)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + b"\x00" * 4 + b"\x00" * 6 + address
    return header + arp


def gratuitous_arp(mac: bytes, ip: str) -> bytes:
    """An Ethernet broadcast ARP request whose sender and target are both `ip` (RFC 5227)."""
    address = socket.inet_aton(ip)
    header = BROADCAST + mac + struct.pack("!H", ARP_ETHERTYPE)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + address + b"\x00" * 6 + address
    return header + arp


def icmpv6_checksum(source: bytes, destination: bytes, message: bytes) -> int:
    """The ICMPv6 checksum: over the IPv6 pseudo-header and the message (RFC 4443 2.3)."""
    pseudo = source + destination + struct.pack("!I3xB", len(message), ICMPV6)
    data = pseudo + message + b"\x00" * (len(message) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _icmpv6_frame(
    destination_mac: bytes, mac: bytes, source: bytes, destination: bytes, message: bytes
) -> bytes:
    """An Ethernet frame carrying an ICMPv6 message with hop limit 255 (as ND requires)."""
    checksum = icmpv6_checksum(source, destination, message)
    message = message[:2] + struct.pack("!H", checksum) + message[4:]
    header = struct.pack("!IHBB", 6 << 28, len(message), ICMPV6, 255) + source + destination
    return destination_mac + mac + struct.pack("!H", IPV6_ETHERTYPE) + header + message


def unsolicited_neighbour_advertisement(mac: bytes, ip: str, *, router: bool = False) -> bytes:
    """An unsolicited Neighbour Advertisement of `ip` at `mac`, to all nodes (RFC 4861 7.2.6).

    Override set, Solicited clear, the target link-layer address option
    carrying `mac`; sent from the address itself, to ff02::1 at 33:33:00:00:00:01.
    """
    target = ipaddress.IPv6Address(ip).packed
    flags = NA_OVERRIDE | (NA_ROUTER if router else 0)
    message = struct.pack("!BBHI", NEIGHBOUR_ADVERTISEMENT, 0, 0, flags) + target
    message += struct.pack("!BB", 2, 1) + mac  # option 2: target link-layer address
    return _icmpv6_frame(b"\x33\x33\x00\x00\x00\x01", mac, target, ALL_NODES.packed, message)


def neighbour_solicitation(mac: bytes, ip: str) -> bytes:
    """A duplicate-address probe: who has `ip`? asked from :: to its solicited-node group."""
    target = ipaddress.IPv6Address(ip).packed
    group = bytes.fromhex("ff0200000000000000000001ff") + target[13:]
    message = struct.pack("!BBHI", NEIGHBOUR_SOLICITATION, 0, 0, 0) + target
    return _icmpv6_frame(b"\x33\x33" + group[12:], mac, bytes(16), group, message)


def advertised_target(frame: bytes) -> bytes | None:
    """The target address of an Ethernet frame carrying a Neighbour Advertisement, else None."""
    if len(frame) < 78 or frame[12:14] != struct.pack("!H", IPV6_ETHERTYPE):
        return None
    if frame[20] != ICMPV6 or frame[54] != NEIGHBOUR_ADVERTISEMENT:
        return None
    return frame[62:78]


class RecordingDriver:
    """For the demo pair on one machine: records which address the site would hold.

    Nothing is configured on the machine. The Failover page and the readiness
    check say so while this driver is in use.
    """

    name = "recording"
    real = False

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings.DATA_DIR / "shared-ip.json"

    def _held(self) -> set[str]:
        try:
            return set(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError):
            return set()

    def _save(self, held: set[str]) -> None:
        self.path.write_text(json.dumps(sorted(held)))

    def holds(self, shared: SharedAddress) -> bool:
        return str(shared) in self._held()

    def add(self, shared: SharedAddress) -> None:
        self._save(self._held() | {str(shared)})

    def remove(self, shared: SharedAddress) -> None:
        self._save(self._held() - {str(shared)})

    def announce(self, shared: SharedAddress, count: int = 3) -> int:
        return 0

    def other_holder(self, shared: SharedAddress, timeout: float = 1.0) -> str | None:
        return None

    def check(self, shared: SharedAddress) -> None:
        return None


def driver() -> Driver:
    """The driver this site is configured with (SHARED_IP_DRIVER)."""
    return LinuxDriver() if settings.SHARED_IP_DRIVER == "linux" else RecordingDriver()
