"""The DNS swing against a real authoritative server (knotd on loopback).

The door (failover.system.dns) updates and reads back the record with TSIG; the
behaviour (failover.dns_swing) records what happened; the Failover page saves
the settings (secret encrypted, never shown again) and its Test button checks
the key without changing anything; `failover check` names a wrong key exactly.
The record is read back by the tests as any client would, unsigned.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from failover import dns_swing
from failover.models import DNSSwing, FailoverEvent, Role
from failover.system import dns
from tests.conftest import paired_as
from tests.dns_server import ALGORITHM, KEY_NAME, NAME, ZONE, Knot, make_secret, require_knot
from tests.sites import free_port

THIS_SITE = {"ipv4": "198.51.100.11", "ipv6": "2001:db8::11"}
OTHER_SITE = ("support A 198.51.100.12", "support AAAA 2001:db8::12")


@pytest.fixture(scope="module")
def knot():
    require_knot()
    with Knot("127.0.0.1", free_port(), records=OTHER_SITE) as server:
        yield server


@pytest.fixture
def server(knot) -> dns.Server:
    return dns.Server("127.0.0.1", knot.port, ZONE, KEY_NAME, ALGORITHM, knot.secret)


def swing(knot, *, secret: str | None = None, **fields) -> DNSSwing:
    config = DNSSwing(
        enabled=True,
        server="127.0.0.1",
        port=knot.port,
        zone=ZONE,
        name=NAME,
        ttl=30,
        key_name=KEY_NAME,
        algorithm=ALGORITHM,
        **{**THIS_SITE, **fields},
    )
    config.store_secret(secret or knot.secret)
    config.save()
    return config


def wrong(secret: str) -> str:
    """Another key of the same length (32 random bytes: never the same twice)."""
    other = make_secret()
    assert other != secret
    return other


# The door -----------------------------------------------------------------------------


def test_it_points_the_name_at_this_site_and_reads_it_back(knot, server):
    published = dns.point(server, NAME, 30, ipv4="198.51.100.11", ipv6="2001:db8::11")
    assert published.addresses == {"A": ["198.51.100.11"], "AAAA": ["2001:db8::11"]}
    assert knot.answer(NAME, "A") == ["198.51.100.11"]
    assert knot.answer(NAME, "AAAA") == ["2001:db8::11"]


def test_a_name_that_does_not_exist_yet_answers_nothing_and_can_be_created(knot, server):
    fresh = f"new.{ZONE}"
    assert dns.addresses(server, fresh) == {"A": [], "AAAA": []}
    dns.point(server, fresh, 30, ipv4="198.51.100.11", ipv6="")
    assert knot.answer(fresh, "A") == ["198.51.100.11"]


def test_a_family_this_site_has_no_address_for_is_removed(knot, server):
    dns.point(server, NAME, 30, ipv4="198.51.100.12", ipv6="2001:db8::12")
    dns.point(server, NAME, 30, ipv4="198.51.100.11", ipv6="")
    assert knot.answer(NAME, "A") == ["198.51.100.11"]
    assert knot.answer(NAME, "AAAA") == []


def test_the_key_check_changes_nothing(knot, server):
    before = knot.serial(), knot.answer(NAME, "A")
    assert dns.check_key(server) == f"zone {ZONE} at serial {before[0]}"
    assert (knot.serial(), knot.answer(NAME, "A")) == before


def test_a_wrong_secret_is_named_as_such_and_changes_nothing(knot, server):
    before = knot.answer(NAME, "A")
    bad = dns.Server("127.0.0.1", knot.port, ZONE, KEY_NAME, ALGORITHM, wrong(knot.secret))
    with pytest.raises(dns.DNSError) as raised:
        dns.point(bad, NAME, 30, ipv4="198.51.100.99", ipv6="")
    assert "(BADSIG)" in raised.value.message
    assert "the secret entered here differs from the server's" in raised.value.message
    assert knot.secret not in raised.value.message
    assert knot.answer(NAME, "A") == before


def test_an_unknown_key_name_is_named_as_such(knot):
    bad = dns.Server("127.0.0.1", knot.port, ZONE, "other-key", ALGORITHM, knot.secret)
    with pytest.raises(dns.DNSError, match=r"does not know the TSIG key other-key .*\(BADKEY\)"):
        dns.check_key(bad)


def test_a_zone_the_server_does_not_serve_is_named(knot):
    bad = dns.Server("127.0.0.1", knot.port, "other.test", KEY_NAME, ALGORITHM, knot.secret)
    with pytest.raises(dns.DNSError, match=re.escape("zone other.test")):
        dns.check_key(bad)


def test_a_server_that_is_not_running_is_named_with_its_port():
    closed = free_port()
    bad = dns.Server("127.0.0.1", closed, ZONE, KEY_NAME, ALGORITHM, make_secret())
    with pytest.raises(dns.DNSError, match=f"no DNS server listens on TCP port {closed}"):
        dns.check_key(bad)


def test_a_name_outside_the_zone_is_refused_before_anything_is_sent(server):
    with pytest.raises(
        dns.DNSError, match=re.escape("support.example.com is not in zone failover.test")
    ):
        dns.point(server, "support.example.com", 30, ipv4="198.51.100.11", ipv6="")


# The behaviour ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_after_a_role_change_the_name_points_here_and_the_history_says_so(knot):
    swing(knot)
    assert dns_swing.follow(epoch=7) == "published"
    assert knot.answer(NAME, "A") == ["198.51.100.11"]
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.DNS)
    assert f"pointed {NAME} at A 198.51.100.11, AAAA 2001:db8::11 as the new primary" in (
        event.message
    )
    assert dns_swing.dns_error() == ""


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_record_changed_after_the_swing_is_left_alone_until_the_next_role_change(knot, server):
    """In a partition both sites are primary: rewriting the record in turn would make every
    client flap. The periodic follow-up sends nothing; `failover check` reports it."""
    swing(knot)
    assert dns_swing.follow(epoch=7) == "published"
    dns.point(server, NAME, 30, ipv4="198.51.100.12", ipv6="2001:db8::12")
    serial = knot.serial()
    assert dns_swing.follow(epoch=7) == "published before"
    assert knot.serial() == serial and knot.answer(NAME, "A") == ["198.51.100.12"]
    assert dns_swing.follow(epoch=8) == "published"
    assert knot.answer(NAME, "A") == ["198.51.100.11"]


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_new_settings_on_the_primary_are_published(knot):
    swing(knot)
    dns_swing.follow(epoch=7)
    config = DNSSwing.load()  # as the page loads it to save it
    config.ipv4, config.ipv6 = "198.51.100.21", None
    config.save()
    assert dns_swing.follow(epoch=7) == "published"
    assert (knot.answer(NAME, "A"), knot.answer(NAME, "AAAA")) == (["198.51.100.21"], [])
    assert "after its settings changed" in (
        FailoverEvent.objects.filter(kind=FailoverEvent.Kind.DNS).first().message
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_failed_swing_is_retried_and_recorded_and_alerted_once_until_it_works(knot):
    swing(knot, secret=wrong(knot.secret))
    for _ in range(3):  # the role change, then each period
        assert dns_swing.follow(epoch=7).startswith("error: ")
    failed = FailoverEvent.objects.filter(kind=FailoverEvent.Kind.DNS_FAILED)
    assert failed.count() == 1
    assert failed.get().is_alerted and "(BADSIG)" in failed.get().message
    assert "(BADSIG)" in dns_swing.dns_error()
    config = DNSSwing.load()
    config.store_secret(knot.secret)
    config.save()
    assert dns_swing.follow(epoch=7) == "published"
    assert knot.answer(NAME, "A") == ["198.51.100.11"]
    assert "after an earlier failure" in (
        FailoverEvent.objects.get(kind=FailoverEvent.Kind.DNS).message
    )
    assert dns_swing.dns_error() == ""
    assert dns_swing.follow(epoch=7) == "published before"


# The page and the check ---------------------------------------------------------------


def form_data(knot, **overrides) -> dict:
    """The DNS swing form as the page posts it (its fields carry the prefix "dns-")."""
    fields = {
        "enabled": "on",
        "server": "127.0.0.1",
        "port": str(knot.port),
        "zone": ZONE,
        "name": NAME,
        "ttl": "30",
        "ipv4": THIS_SITE["ipv4"],
        "ipv6": THIS_SITE["ipv6"],
        "key_name": KEY_NAME,
        "algorithm": ALGORITHM,
        "secret": knot.secret,
        **overrides,
    }
    return {f"dns-{name}": value for name, value in fields.items()}


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_the_page_keeps_the_secret_encrypted_and_never_shows_it(admin_client, knot):
    response = admin_client.post(reverse("failover:dns_swing"), form_data(knot))
    assert response.status_code == 302
    config = DNSSwing.load()
    assert config.is_configured and config.reveal_secret() == knot.secret
    assert knot.secret not in config.encrypted_secret
    page = admin_client.get(reverse("failover:failover")).content.decode()
    assert knot.secret not in page
    assert "(saved; leave empty to keep it)" in page
    # Saved again without a secret: the stored one stays.
    admin_client.post(reverse("failover:dns_swing"), form_data(knot, secret="", ttl="60"))
    assert DNSSwing.load().ttl == 60 and DNSSwing.load().reveal_secret() == knot.secret


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_the_test_button_checks_the_key_and_changes_nothing(admin_client, knot):
    serial, record = knot.serial(), knot.answer(NAME, "A")
    response = admin_client.post(reverse("failover:dns_swing"), {**form_data(knot), "test": "1"})
    page = response.content.decode()
    assert response.status_code == 200
    assert f"serves zone {ZONE} at serial {serial} and accepts TSIG key {KEY_NAME}" in page
    assert "Nothing was changed or saved" in page
    assert (knot.serial(), knot.answer(NAME, "A")) == (serial, record)
    assert not DNSSwing.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_a_wrong_secret_shows_a_precise_error_on_the_page(admin_client, knot):
    bad = wrong(knot.secret)
    response = admin_client.post(
        reverse("failover:dns_swing"), {**form_data(knot, secret=bad), "test": "1"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert (
        f"rejected the signature made with TSIG key {KEY_NAME} (BADSIG) and refused to answer "
        f"for zone {ZONE}: the secret entered here differs from the server&#x27;s." in page
    )
    assert bad not in page and knot.secret not in page


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"secret": "not base64!"}, "The TSIG secret is not base64."),
        ({"secret": "c2hvcnQ="}, "The TSIG secret is shorter than 16 bytes"),
        ({"name": "support.example.com"}, "support.example.com is not in zone failover.test"),
        ({"ipv4": "", "ipv6": ""}, "Enter this site&#x27;s IPv4 address, its IPv6 address"),
        ({"ipv4": "2001:db8::11"}, "Enter a valid IPv4 address."),
        ({"server": "not a host!"}, "is not a host name or IP address"),
        ({"secret": "", "key_name": ""}, "To enable the DNS swing, fill in: TSIG key name, TSIG"),
    ],
)
def test_bad_settings_are_refused_with_how_to_fix_them(admin_client, knot, overrides, error):
    response = admin_client.post(reverse("failover:dns_swing"), form_data(knot, **overrides))
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not DNSSwing.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_failover_check_names_a_wrong_secret(knot):
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    swing(knot, secret=wrong(knot.secret))
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("failover", "check", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if "dns swing" in line)
    assert line.startswith("FAIL")
    assert f"TSIG key {KEY_NAME} (BADSIG)" in line


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_failover_check_on_the_primary_says_whether_the_name_leads_here(knot, server):
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    swing(knot)
    dns.point(server, NAME, 30, ipv4="198.51.100.12", ipv6="")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("failover", "check", stdout=out)
    assert "answers A 198.51.100.12, not this primary's A 198.51.100.11, AAAA 2001:db8::11" in (
        out.getvalue()
    )
    DNSSwing.objects.update(published="")
    dns_swing.follow(epoch=7)
    out = io.StringIO()
    with pytest.raises(CommandError):  # the peer is not running: that check fails
        call_command("failover", "check", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if "dns swing" in line)
    assert line.startswith("ok") and f"accepts TSIG key {KEY_NAME}" in line


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_saving_the_settings_on_the_primary_points_the_name_here_again(admin_client, knot, server):
    state = paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    swing(knot)
    assert dns_swing.follow(state.epoch) == "published"
    dns.point(server, NAME, 30, ipv4="198.51.100.12", ipv6="")  # changed by someone else
    assert dns_swing.follow(state.epoch) == "published before"
    admin_client.post(reverse("failover:dns_swing"), form_data(knot, secret=""))
    assert dns_swing.follow(state.epoch) == "published"
    assert knot.answer(NAME, "A") == [THIS_SITE["ipv4"]]
    assert "after its settings changed" in (
        FailoverEvent.objects.filter(kind=FailoverEvent.Kind.DNS).first().message
    )
