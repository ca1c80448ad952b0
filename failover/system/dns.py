"""The DNS swing's door: RFC 2136 dynamic updates signed with TSIG (RFC 8945), by dnspython.

`point` replaces a name's A and AAAA records at the zone's authoritative
server and reads them back; `check_key` proves that the server knows the key,
without changing anything; `addresses` reads what the server answers now.
Every message is signed and every answer's signature checked, over TCP (an
update is never sent twice by a retransmission, and a dead server says so at
once). Failures raise DNSError with a sentence for the page and the history
that names the server, the zone or the key, and the cause; never the secret.
"""

from __future__ import annotations

import binascii
import ipaddress
import socket
import time
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

DEFAULT_TIMEOUT = 3.0
FAMILIES = {"A": 4, "AAAA": 6}


class DNSError(Exception):
    """The DNS server did not do what was asked; the message says which server and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Server:
    """A zone's authoritative server and the TSIG key it accepts updates signed with."""

    host: str
    port: int
    zone: str
    key_name: str
    algorithm: str
    secret: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"DNS server {host}:{self.port}"

    def key(self) -> dns.tsig.Key:
        try:
            return dns.tsig.Key(self.key_name, self.secret, self.algorithm)
        except (binascii.Error, ValueError):
            raise DNSError(
                f"The TSIG secret of key {self.key_name} is not valid base64: enter it as the "
                "server's configuration shows it (e.g. from tsig-keygen)."
            ) from None

    def origin(self) -> dns.name.Name:
        return dns.name.from_text(self.zone)

    def relative(self, name: str) -> dns.name.Name:
        """`name` relative to the zone; DNSError when it lies outside the zone."""
        absolute = dns.name.from_text(name)
        if not absolute.is_subdomain(self.origin()):
            raise DNSError(f"{name} is not in zone {self.zone}: enter a name inside the zone.")
        return absolute.relativize(self.origin())


@dataclass(frozen=True)
class Published:
    """What the server answers for the name after an update, and how long it all took."""

    addresses: dict[str, list[str]]
    seconds: float


def _address(server: Server) -> str:
    """The server's IP address (a host name is resolved once per call)."""
    try:
        return str(ipaddress.ip_address(server.host))
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(server.host, server.port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise DNSError(f"Cannot resolve the DNS server's name {server.host}: {error}.") from None
    return str(found[0][4][0])


def _send(server: Server, message: dns.message.Message, what: str) -> dns.message.Message:
    """Send a signed message over TCP and return the verified answer. Raises DNSError."""
    where = _address(server)
    try:
        answer = dns.query.tcp(message, where, timeout=server.timeout, port=server.port)
    except dns.tsig.PeerBadKey:
        raise DNSError(
            f"The {server.display} does not know the TSIG key {server.key_name} "
            f"({server.algorithm}) (BADKEY) and refused to {what}: check the key's name and "
            "algorithm."
        ) from None
    except dns.tsig.PeerBadSignature:
        raise DNSError(
            f"The {server.display} rejected the signature made with TSIG key {server.key_name} "
            f"(BADSIG) and refused to {what}: the secret entered here differs from the "
            "server's. Enter the key's secret again."
        ) from None
    except dns.tsig.PeerBadTime:
        raise DNSError(
            f"The {server.display} refused to {what}: the TSIG signature's time is off (BADTIME). "
            "This site's clock and the server's differ by more than the allowed 300 s: "
            "check NTP on both."
        ) from None
    except dns.tsig.PeerError as error:
        raise DNSError(f"The {server.display} refused the TSIG signature: {error}.") from None
    except (dns.tsig.BadSignature, dns.tsig.BadTime, dns.tsig.BadKey):
        raise DNSError(
            f"The answer from the {server.display} does not carry a valid signature of TSIG key "
            f"{server.key_name}: it was not taken as the server's."
        ) from None
    except dns.message.UnknownTSIGKey:
        raise DNSError(
            f"The {server.display} signed its answer with another key than {server.key_name}."
        ) from None
    except dns.exception.FormError as error:
        if "TSIG" in str(error):
            raise DNSError(
                f"The {server.display} answered without a TSIG signature and did not {what}: "
                f"it does not accept key {server.key_name} for zone {server.zone}, or does not "
                "serve that zone."
            ) from None
        raise DNSError(
            f"The {server.display} sent an answer that cannot be read: {error}."
        ) from None
    except dns.exception.Timeout:
        raise DNSError(
            f"The {server.display} did not answer within {server.timeout:g} s, so it did not "
            f"{what}."
        ) from None
    except ConnectionRefusedError:
        raise DNSError(
            f"The {server.display} refused the connection: no DNS server listens on TCP port "
            f"{server.port} there."
        ) from None
    except OSError as error:
        raise DNSError(
            f"Could not reach the {server.display}: {error.strerror or error}."
        ) from None
    except dns.exception.DNSException as error:
        raise DNSError(f"The {server.display} could not {what}: {error}.") from None
    return answer


def _refused(
    server: Server, answer: dns.message.Message, what: str, *, query: bool = False
) -> DNSError | None:
    """The answer's status code as a sentence, or None when it says yes."""
    code = answer.rcode()
    if code == dns.rcode.NOERROR:
        return None
    name = dns.rcode.to_text(code)
    refused = (
        f"it does not serve zone {server.zone}"
        if query
        else f"its policy does not let key {server.key_name} update zone {server.zone}"
    )
    reason = {
        dns.rcode.REFUSED: refused,
        dns.rcode.NOTAUTH: f"it is not authoritative for zone {server.zone}",
        dns.rcode.NOTZONE: f"the name is not in zone {server.zone}",
        dns.rcode.SERVFAIL: "it failed to apply it; its log says why",
    }.get(code, "see the server's log")
    return DNSError(f"The {server.display} refused to {what} ({name}): {reason}.")


def addresses(server: Server, name: str) -> dict[str, list[str]]:
    """The A and AAAA records the server answers for `name` now (signed queries)."""
    key = server.key()
    found: dict[str, list[str]] = {}
    for rdtype in FAMILIES:
        query = dns.message.make_query(dns.name.from_text(name), rdtype)
        query.use_tsig(key)
        answer = _send(server, query, f"answer for {name} {rdtype}")
        if answer.rcode() == dns.rcode.NXDOMAIN:  # no such name (yet): no records
            found[rdtype] = []
            continue
        if error := _refused(server, answer, f"answer for {name} {rdtype}", query=True):
            raise error
        found[rdtype] = sorted(
            rdata.address
            for rrset in answer.answer
            if rrset.rdtype == dns.rdatatype.from_text(rdtype)
            for rdata in rrset
        )
    return found


def point(server: Server, name: str, ttl: int, *, ipv4: str, ipv6: str) -> Published:
    """Point `name` at these addresses and nothing else; verify the server's answer.

    One update replaces the name's A record with `ipv4` and its AAAA record
    with `ipv6` (an empty one removes the record of that family, so the name
    cannot still lead a client to the other site). Then the records are read
    back; DNSError if the server refused, or answers anything else.
    """
    started = time.monotonic()
    relative = server.relative(name)
    update = dns.update.UpdateMessage(server.origin(), keyring=server.key())
    wanted = {"A": [ipv4] if ipv4 else [], "AAAA": [ipv6] if ipv6 else []}
    for rdtype, values in wanted.items():
        if values:
            update.replace(relative, ttl, rdtype, *values)
        else:
            update.delete(relative, rdtype)
    what = f"update {name} in zone {server.zone}"
    if error := _refused(server, _send(server, update, what), what):
        raise error
    found = addresses(server, name)
    for rdtype, values in wanted.items():
        normal = sorted(str(ipaddress.ip_address(value)) for value in values)
        if found[rdtype] != normal:
            answered = ", ".join(found[rdtype]) or "nothing"
            raise DNSError(
                f"The {server.display} accepted the update, but answers {name} {rdtype} "
                f"{answered}, not {', '.join(normal) or 'nothing'}."
            )
    return Published(found, time.monotonic() - started)


def check_key(server: Server) -> str:
    """Prove that the server serves the zone and accepts the key, changing nothing.

    Sends an update with no changes in it, signed with the key: the server
    checks the signature (and, with an ACL on the zone, that the key may
    update it) and applies nothing. Returns the zone's SOA serial, for the page.
    """
    query = dns.message.make_query(server.origin(), "SOA")
    query.use_tsig(server.key())
    answer = _send(server, query, f"answer for zone {server.zone}")
    if error := _refused(server, answer, f"answer for zone {server.zone}", query=True):
        raise error
    serials = [
        rdata.serial
        for rrset in answer.answer
        if rrset.rdtype == dns.rdatatype.SOA
        for rdata in rrset
    ]
    if not serials:
        raise DNSError(
            f"The {server.display} does not serve zone {server.zone}: it has no SOA record for it."
        )
    empty = dns.update.UpdateMessage(server.origin(), keyring=server.key())
    what = f"take updates of zone {server.zone}"
    if error := _refused(server, _send(server, empty, what), what):
        raise error
    return f"zone {server.zone} at serial {serials[0]}"
