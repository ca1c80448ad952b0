"""Posting an alert to the administrator's webhook, and nowhere else.

The webhook URL is typed in a page, so it is not trusted to point outside the
machine: the site's own loopback services (its Redis, the other helpers on
127.0.0.1) and link-local addresses (a cloud's metadata service at
169.254.169.254) are refused unless ALERT_WEBHOOK_ALLOW_PRIVATE says otherwise.
The address checked is the one the connection actually reached, after name
resolution, so a name that resolves to a public address when saved and to
127.0.0.1 when used (DNS rebinding) is refused too. Redirects are not followed:
a redirect could lead anywhere, so the webhook must be given as its final URL.

Through an HTTP proxy (HTTP_PROXY, HTTPS_PROXY) the connection reaches the
proxy, and the proxy decides where the request goes.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

TIMEOUT = 5


class WebhookRefused(Exception):
    """The webhook's address is one alerts may not be sent to. `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def forbidden(address: str) -> bool:
    """Whether an address is this machine's own or link-local (and not allowed by setting)."""
    if settings.ALERT_WEBHOOK_ALLOW_PRIVATE:
        return False
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast


def _refusal(where: str, address: str) -> WebhookRefused:
    return WebhookRefused(
        f"The webhook {where} is at {address}, a loopback or link-local address: alerts are "
        "not sent to this machine's own services. Enter the webhook's public address (or set "
        "ALERT_WEBHOOK_ALLOW_PRIVATE=1 if the receiver really runs there)."
    )


def check_url(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, a forbidden address. Raises WebhookRefused.

    Used when the URL is saved; the connection itself checks again when it is used.
    """
    host = urlsplit(url).hostname or ""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        return  # An unknown name fails when the alert is sent, with its own reason.
    for address in sorted(found):
        if forbidden(address):
            raise _refusal(host, address)


class _Guarded:
    """A urllib3 connection that refuses to talk once it sees where it is connected."""

    host: str

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        address = sock.getpeername()[0]
        if forbidden(address):
            sock.close()
            raise _refusal(self.host, address)
        return sock


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


def post(url: str, payload: object) -> None:
    """POST `payload` as JSON to the webhook. Raises WebhookRefused, requests.HTTPError (an
    answer of 300 or more: redirects are not followed) or another RequestException."""
    with requests.Session() as session:
        guarded = _GuardedAdapter()
        session.mount("http://", guarded)
        session.mount("https://", guarded)
        response = session.post(url, json=payload, timeout=TIMEOUT, allow_redirects=False)
        if response.is_redirect or 300 <= response.status_code < 400:
            raise requests.HTTPError(
                f"redirected to {response.headers.get('Location', 'elsewhere')[:200]}",
                response=response,
            )
        response.raise_for_status()
