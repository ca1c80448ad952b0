"""The client's address, taken from a reverse proxy's X-Forwarded-For only when the proxy
is one of TRUSTED_PROXIES.

Anyone can send an X-Forwarded-For header. Only the addresses that trusted proxies
appended to it are facts: walking it from the right, past the trusted proxies, the
first address that is not one is the client (whatever stands left of it, the client
wrote). The login lockout, and whatever else reads REMOTE_ADDR, then sees the client,
not the proxy, so one attacker behind the proxy cannot lock everyone else out.
A request whose direct peer is not trusted keeps its own address, and its
X-Forwarded-Proto is dropped, so it cannot pass itself off as HTTPS either.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from appliance.config import IPNetwork

# The address the request came from before the proxy's header was read.
DIRECT_PEER = "appliance.direct_peer"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.7:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: object, proxies: Sequence[IPNetwork]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_address(peer: str, forwarded_for: str, proxies: Sequence[IPNetwork]) -> str:
    """The client's address: `peer` itself unless it is a trusted proxy; then the
    right-most address of `forwarded_for` that is no trusted proxy (a malformed entry
    ends the walk at the last hop that could be trusted)."""
    if not _trusted(_address(peer), proxies):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry)
        if address is None:
            break
        client = str(address)
        if not _trusted(address, proxies):
            break
    return client


def request_client_address(request: HttpRequest) -> str:
    """The address django-axes counts failed logins against (AXES_CLIENT_IP_CALLABLE)."""
    return request.META.get("REMOTE_ADDR", "")


class TrustedProxyMiddleware:
    """First in MIDDLEWARE: REMOTE_ADDR becomes the client's address for everything after
    it (the login lockout, the peer API's refusal records); the direct peer is kept under
    DIRECT_PEER."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        peer = meta.get("REMOTE_ADDR", "")
        meta[DIRECT_PEER] = peer
        proxies = settings.TRUSTED_PROXIES
        if _trusted(_address(peer), proxies):
            meta["REMOTE_ADDR"] = client_address(
                peer, meta.get("HTTP_X_FORWARDED_FOR", ""), proxies
            )
        else:
            meta.pop("HTTP_X_FORWARDED_PROTO", None)
        return self.get_response(request)
