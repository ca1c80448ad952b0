"""One IPv4 and one IPv6 shared address at once: the setting, the reconcile, what is reported.

The demo driver stands for the interface here (the Linux driver is tested for
real in tests/test_shared_ip_driver.py and the lab); a driver that refuses one
family shows that a problem with one address neither hides nor blocks the other.
"""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.urls import reverse

from failover import health, readiness, roles, shared_ip
from failover.models import FailoverEvent, FailoverState, Role, SharedIP
from failover.system.shared_ip import RecordingDriver, SharedIPError
from tests.conftest import paired_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("peer_redis")]
SHARED = "198.51.100.50/24"
SHARED6 = "2001:db8::50/64"


@pytest.fixture
def primary(settings, tmp_path, monkeypatch):
    settings.SHARED_IP_DRIVER = "recording"
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr("failover.jobs.announce_shared_ip", lambda **_: None)
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    SharedIP(enabled=True, address=SHARED, address6=SHARED6, interface="eth0").save()
    return RecordingDriver(tmp_path / "shared-ip.json")


class NoIPv6(RecordingDriver):
    """An interface with IPv6 disabled: the IPv4 address works, the IPv6 one cannot."""

    def check(self, shared):
        if shared.version == 6:
            raise SharedIPError(f"Cannot hold {shared.interface} on eth0: IPv6 is disabled.")


def test_the_primary_holds_both_addresses_and_the_backup_neither(primary):
    assert shared_ip.reconcile(peer_checked=True) == "added"
    assert primary._held() == {f"{SHARED} on eth0", f"{SHARED6} on eth0"}
    took = FailoverEvent.objects.get(kind=FailoverEvent.Kind.SHARED_IP).message
    assert f"{SHARED} on eth0 (0 gratuitous ARP)" in took
    assert f"{SHARED6} on eth0 (0 unsolicited neighbour advertisements)" in took
    assert health.enabled_shared_ips() == ["198.51.100.50", "2001:db8::50"]
    roles.demote(99, "test", "test")
    assert shared_ip.reconcile() == "removed"
    assert primary._held() == set()
    assert health.enabled_shared_ips() == []


def test_one_address_that_cannot_be_held_does_not_keep_the_other_away(primary, monkeypatch):
    monkeypatch.setattr(shared_ip, "driver", lambda: NoIPv6(primary.path))
    outcome = shared_ip.reconcile(peer_checked=True)
    assert outcome.startswith("error: ") and "IPv6 is disabled" in outcome
    assert primary._held() == {f"{SHARED} on eth0"}
    checked = {str(shared): problem for shared, problem in shared_ip.checked().items()}
    assert checked == {
        f"{SHARED} on eth0": "",
        f"{SHARED6} on eth0": f"Cannot hold {SHARED6} on eth0: IPv6 is disabled.",
    }
    assert "IPv6 is disabled" in shared_ip.shared_ip_error()


def test_failover_check_names_each_address_and_its_problem(primary, monkeypatch):
    monkeypatch.setattr(shared_ip, "driver", lambda: NoIPv6(primary.path))
    shared_ip.reconcile(peer_checked=True)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("failover", "check", stdout=out)
    lines = {line.split()[2]: line for line in out.getvalue().splitlines() if "shared ipv" in line}
    assert lines["ipv4"].startswith("ok") and "announced with gratuitous ARP; held" in lines["ipv4"]
    assert lines["ipv6"].startswith("FAIL") and "IPv6 is disabled" in lines["ipv6"]


def test_the_page_shows_each_address_and_who_holds_it(primary, admin_client):
    shared_ip.reconcile(peer_checked=True)
    page = admin_client.get(reverse("failover:failover")).content.decode()
    assert page.count('data-testid="holds-shared-ip">holds</span>') == 2
    assert SHARED6 in page


def form(**fields) -> dict:
    return {"enabled": "on", "address": SHARED, "address6": SHARED6, "interface": "eth0", **fields}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"address": SHARED6}, "is an IPv6 address: enter it under IPv6 address"),
        ({"address6": SHARED}, "is an IPv4 address: enter it under IPv4 address"),
        ({"address6": "2001:db8::50"}, "Add the prefix length, e.g. 2001:db8::10/64."),
        ({"address6": "fe80::50/64"}, "cannot be shared (a multicast, loopback, link-local"),
        ({"address6": "ff02::1/64"}, "cannot be shared"),
        ({"address": "", "address6": ""}, "enter an address with its prefix (IPv4, IPv6 or one"),
    ],
)
def test_a_wrong_address_is_refused_with_how_to_fix_it(admin_client, fields, error):
    response = admin_client.post(reverse("failover:shared_ip"), form(**fields))
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not SharedIP.objects.exists()


def test_an_ipv6_address_alone_is_a_shared_ip(admin_client):
    response = admin_client.post(reverse("failover:shared_ip"), form(address=""))
    assert response.status_code == 302
    config = SharedIP.load()
    assert config.is_configured and config.addresses == [SHARED6]


def test_an_ipv6_address_saved_in_the_single_field_of_old_moves_to_its_own():
    SharedIP(enabled=True, address=SHARED6, interface="eth0").save()
    migration = importlib.import_module("failover.migrations.0009_service_methods")
    migration.ipv6_to_its_own_field(apps, None)
    config = SharedIP.load()
    assert (config.address, config.address6) == ("", SHARED6)


@pytest.mark.parametrize(
    ("hello", "ok", "detail"),
    [
        ({"shared_ip": SHARED, "shared_ip6": SHARED6}, True, "the same on both sites"),
        ({"shared_ip": SHARED}, True, "the same on both sites"),  # a peer one release older
        ({"shared_ip": SHARED, "shared_ip6": ""}, False, f"does not share {SHARED6}"),
        (
            {"shared_ip": "198.51.100.51/24", "shared_ip6": SHARED6},
            False,
            f"This site shares {SHARED}, site-b 198.51.100.51/24: use one address.",
        ),
    ],
)
def test_failover_check_compares_both_addresses_with_the_peers(primary, hello, ok, detail):
    found = {c.name: c for c in readiness.service_checks(FailoverState.load(), hello)}
    assert found["shared ip"].ok is ok
    assert detail in found["shared ip"].detail
