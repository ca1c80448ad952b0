"""The client's address through a trusted reverse proxy, and only through one."""

import ipaddress

import pytest
from django.test import Client

from appliance.proxies import TrustedProxyMiddleware, client_address
from tests.conftest import DEFAULT_PASSWORD

PROXIES = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")]


def test_a_direct_client_is_its_own_address_whatever_it_claims():
    assert client_address("198.51.100.4", "127.0.0.9", PROXIES) == "198.51.100.4"


def test_a_trusted_proxy_names_the_client():
    assert client_address("127.0.0.1", "198.51.100.4", PROXIES) == "198.51.100.4"


def test_what_the_client_wrote_left_of_it_is_ignored():
    assert client_address("127.0.0.1", "127.0.0.9, 203.0.113.5", PROXIES) == "203.0.113.5"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right():
    chain = "192.0.2.66, 198.51.100.4, 10.1.2.3"
    assert client_address("127.0.0.1", chain, PROXIES) == "198.51.100.4"


def test_ports_and_brackets_are_understood():
    assert client_address("127.0.0.1", "[2001:db8::7]:4711", PROXIES) == "2001:db8::7"
    assert client_address("127.0.0.1", "198.51.100.4:4711", PROXIES) == "198.51.100.4"


def test_a_malformed_entry_ends_the_walk_at_the_last_trusted_hop():
    assert client_address("127.0.0.1", "198.51.100.4, junk, 10.1.2.3", PROXIES) == "10.1.2.3"
    assert client_address("127.0.0.1", "", PROXIES) == "127.0.0.1"


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_lockout_counts_the_client(regular_user, settings):
    settings.TRUSTED_PROXIES = PROXIES
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        proxy.post(
            "/login",
            {"username": f"guess{attempt}", "password": "wrong"},
            headers={"X-Forwarded-For": "198.51.100.4"},
        )
    good = {"username": "rep", "password": DEFAULT_PASSWORD}
    attacker = proxy.post("/login", good, headers={"X-Forwarded-For": "198.51.100.4"})
    assert attacker.status_code == 429
    other = proxy.post("/login", good, headers={"X-Forwarded-For": "198.51.100.5"})
    assert other["Location"] == "/status/"


@pytest.mark.django_db
def test_a_forged_header_from_an_untrusted_peer_changes_nothing(regular_user, settings):
    client = Client(REMOTE_ADDR="192.0.2.66")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/login",
            {"username": f"guess{attempt}", "password": "wrong"},
            headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
        )
    good = {"username": "rep", "password": DEFAULT_PASSWORD}
    assert (
        client.post("/login", good, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 429
    )


@pytest.mark.django_db
def test_an_untrusted_peer_cannot_claim_https(rf, settings):
    seen = {}

    def view(request):
        seen["secure"] = request.is_secure()
        return None

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    request = rf.get("/", REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_PROTO="https")
    TrustedProxyMiddleware(view)(request)
    assert seen["secure"] is False
    settings.TRUSTED_PROXIES = PROXIES
    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
    TrustedProxyMiddleware(view)(request)
    assert seen["secure"] is True
