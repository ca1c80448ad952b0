"""The DNS swing: the primary points the service's name at itself (RFC 2136 with TSIG).

For pairs that cannot share an address (different subnets, clouds): clients
reach the service by a name, and whichever site becomes primary replaces the
name's A and AAAA records with its own addresses at the zone's authoritative
server, then reads them back: once per role change (and again after its
settings change). A swing that failed is tried again every peer-check period
until it works. A failure is recorded in the status history
(and alerted) once per distinct error; the last one is kept for the Failover
page and `failover check`. The server is reached only through
failover.system.dns.
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings

from appliance.broker import connection
from failover.models import DNSSwing, FailoverEvent
from failover.system import dns
from failover.system.dns import DNSError
from security.keys import KeyUnreadable

logger = logging.getLogger(__name__)

ERROR_KEY = "appliance-failover:dns-error"


def server(config: DNSSwing, secret: str | None = None) -> dns.Server:
    """The configured server and key (`secret`: one just entered, else the stored one)."""
    if secret is None:
        try:
            secret = config.reveal_secret()
        except KeyUnreadable as error:
            raise DNSError(str(error)) from None
    return dns.Server(
        host=config.server,
        port=config.port,
        zone=config.zone,
        key_name=config.key_name,
        algorithm=config.algorithm,
        secret=secret,
    )


def wanted(config: DNSSwing) -> dict[str, list[str]]:
    """What the name must answer while this site is primary."""
    return {"A": [config.ipv4] if config.ipv4 else [], "AAAA": [config.ipv6] if config.ipv6 else []}


def _listed(addresses: dict[str, list[str]]) -> str:
    named = [f"{rdtype} {value}" for rdtype, values in addresses.items() for value in values]
    return ", ".join(named) or "nothing"


def follow(epoch: int) -> str:
    """On the primary: point the name here once per role change (`epoch`) and settings.

    Made again only when the epoch or the settings change, or after a failure
    (every period until it works). A record changed after a swing that worked
    is left alone: during a partition both sites are primary, and two sites
    rewriting one record in turn would make every client flap. `failover
    check` on the primary says when the name does not lead here. Returns what
    it did, for logs and tests.
    """
    config = DNSSwing.load()
    if not config.is_configured:
        _set_error("")
        return "no DNS swing configured"
    fingerprint = config.fingerprint(epoch)
    if config.published == fingerprint:
        return "published before"
    if dns_error():
        reason = "after an earlier failure"
    elif config.published.split(" ", 1)[0] == str(epoch):
        reason = "after its settings changed"
    else:
        reason = "as the new primary"
    try:
        target = server(config)
        published = dns.point(
            target,
            config.name,
            config.ttl,
            ipv4=config.ipv4 or "",
            ipv6=config.ipv6 or "",
        )
    except DNSError as error:
        _failed(error.message)
        return f"error: {error.message}"
    config.record_published(fingerprint)
    FailoverEvent.record(
        FailoverEvent.Kind.DNS,
        f"{settings.APPLIANCE_NAME} pointed {config.name} at {_listed(published.addresses)} "
        f"{reason} (TTL {config.ttl} s; the {target.display} confirmed it in "
        f"{published.seconds * 1000:.0f} ms).",
    )
    _set_error("")
    return "published"


def test(config: DNSSwing, secret: str | None = None) -> str:
    """The Test button: does the server take the key? Changes nothing. Raises DNSError."""
    target = server(config, secret)
    zone = dns.check_key(target)
    answered = dns.addresses(target, config.name) if config.name else {}
    now = f" {config.name} answers {_listed(answered)}." if config.name else ""
    return (
        f"The {target.display} serves {zone} and accepts TSIG key {config.key_name} "
        f"({config.algorithm}).{now}"
    )


def check(config: DNSSwing, *, primary: bool) -> tuple[bool, str]:
    """For `failover check`: does the server answer a signed query and take the key, and
    (on the primary) does the name lead here? (ok, a sentence)."""
    try:
        said = test(config)
        if primary:
            answered = dns.addresses(server(config), config.name)
            if answered != wanted(config):
                return False, (
                    f"{config.name} answers {_listed(answered)}, not this primary's "
                    f"{_listed(wanted(config))}. It changed after this site's swing (the other "
                    "site in a partition, or by hand) and is left alone until the next role "
                    "change; save the DNS swing settings to point it here again."
                )
    except DNSError as error:
        return False, error.message
    return True, said


def _failed(message: str) -> None:
    if message != dns_error():
        FailoverEvent.record(
            FailoverEvent.Kind.DNS_FAILED,
            f"DNS swing on {settings.APPLIANCE_NAME}: {message}",
            severity=FailoverEvent.Severity.DANGER,
        )
    _set_error(message)


def _set_error(message: str) -> None:
    try:
        if message:
            connection().set(ERROR_KEY, message)
        else:
            connection().delete(ERROR_KEY)
    except redis.RedisError:
        logger.warning("could not store the DNS swing's error in Redis")


def dns_error() -> str:
    """The DNS swing's last error on this site ("" when its last try worked)."""
    try:
        value = connection().get(ERROR_KEY)
    except redis.RedisError:
        return ""
    return value.decode() if value else ""
