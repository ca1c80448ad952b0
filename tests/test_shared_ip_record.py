"""The web reads who holds the shared IP from what the network worker saw.

Under docker-compose the web container has a network namespace of its own: asked
directly, its kernel would always say "not held". The network worker, which
manages the address, records what the interface has at every reconcile.
"""

from __future__ import annotations

import pytest

from failover import roles, shared_ip
from failover.models import Role, SharedIP
from tests.conftest import paired_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("peer_redis")]


class Blind:
    """The web container's view: no interface of the host, so never the address."""

    def holds(self, _shared):
        return False


@pytest.fixture
def primary(settings, tmp_path, monkeypatch):
    settings.SHARED_IP_DRIVER = "recording"
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr("failover.jobs.announce_shared_ip", lambda **_: None)
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    SharedIP(enabled=True, address="192.0.2.10/24", interface="eth0").save()


def test_the_web_sees_the_address_the_network_worker_took_and_released(primary, monkeypatch):
    worker_driver = shared_ip.driver
    assert shared_ip.reconcile(peer_checked=True) == "added"
    monkeypatch.setattr(shared_ip, "driver", Blind)
    assert shared_ip.holds_shared_ip() is True

    monkeypatch.setattr(shared_ip, "driver", worker_driver)
    roles.demote(2, "test", "test")
    assert shared_ip.reconcile() == "removed"
    monkeypatch.setattr(shared_ip, "driver", Blind)
    assert shared_ip.holds_shared_ip() is False


def test_without_a_record_the_interface_is_asked(primary, monkeypatch):
    class Sees:
        def holds(self, _shared):
            return True

    monkeypatch.setattr(shared_ip, "driver", Sees)
    assert shared_ip.holds_shared_ip() is True


def test_a_record_of_another_address_says_nothing(primary, monkeypatch):
    assert shared_ip.reconcile(peer_checked=True) == "added"
    SharedIP.objects.update(address="192.0.2.20/24")
    monkeypatch.setattr(shared_ip, "driver", Blind)
    assert shared_ip.holds_shared_ip() is False
