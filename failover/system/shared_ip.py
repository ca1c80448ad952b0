"""The shared IP: hold it on an interface, let it go, announce it.

`LinuxDriver` adds and removes the address through netlink (pyroute2) and
announces a newly held IPv4 address with gratuitous ARP from a raw AF_PACKET
socket, so neighbours switch to this machine's MAC at once instead of after
their cache expires (tens of seconds). `RecordingDriver` only records the wish:
it is for the local demo pair on one machine and says so wherever it is used.
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
BROADCAST = b"\xff" * 6


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


def _problem(action: str, shared: SharedAddress, error: BaseException) -> SharedIPError:
    code = getattr(error, "code", None) or getattr(error, "errno", None)
    reason = {
        errno.EPERM: "operation not permitted (the worker needs CAP_NET_ADMIN)",
        errno.EACCES: "permission denied (the worker needs CAP_NET_RAW)",
        errno.ENODEV: "no such interface",
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

        with IPRoute() as ipr:
            index = self._index(ipr, shared)
            try:
                ipr.addr(
                    command,
                    index=index,
                    address=shared.ip,
                    prefixlen=shared.interface.network.prefixlen,
                )
            except NetlinkError as error:
                if error.code not in done:
                    raise _problem("add" if command == "add" else "remove", shared, error) from None

    def other_holder(self, shared: SharedAddress, timeout: float = 1.0) -> str | None:
        """Duplicate address detection: the MAC of another machine answering for the address.

        Sends ARP probes and listens for replies for `timeout` seconds (IPv4 only).
        """
        if shared.interface.version != 4:
            return None
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

    def announce(self, shared: SharedAddress, count: int = 3) -> int:
        """Send `count` gratuitous ARP requests for an IPv4 address; returns how many went."""
        if shared.interface.version != 4:
            return 0  # IPv6 neighbours learn from the kernel's unsolicited advertisements
        try:
            with socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ARP_ETHERTYPE)
            ) as raw:
                raw.bind((shared.device, 0))
                mac = raw.getsockname()[4][:6]
                frame = gratuitous_arp(mac, shared.ip)
                for _ in range(count):
                    raw.send(frame)
        except OSError as error:
            raise _problem("announce", shared, error) from None
        return count


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


def driver() -> Driver:
    """The driver this site is configured with (SHARED_IP_DRIVER)."""
    return LinuxDriver() if settings.SHARED_IP_DRIVER == "linux" else RecordingDriver()
