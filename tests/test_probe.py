"""The Network Connectivity Test: targets, TCP connects, ICMP (on loopback only)."""

import os
import socket

import pytest

from failover.system.probe import Target, probe


def test_targets_parse_addresses_and_address_port_pairs():
    assert Target.parse("198.51.100.7") == Target("198.51.100.7")
    assert Target.parse("198.51.100.7:443") == Target("198.51.100.7", 443)
    assert Target.parse("[2001:db8::1]:53") == Target("2001:db8::1", 53)
    assert str(Target("2001:db8::1", 53)) == "[2001:db8::1]:53"


@pytest.mark.parametrize("text", ["example.com", "198.51.100.7:0", "198.51.100.7:x", "1.2.3"])
def test_bad_targets_are_refused(text):
    with pytest.raises(ValueError):
        Target.parse(text)


def test_a_listening_port_is_reachable_and_a_closed_one_is_not():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        open_port = server.getsockname()[1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            closed_port = closed.getsockname()[1]
        results = probe([Target("127.0.0.1", open_port), Target("127.0.0.1", closed_port)])
    assert [r.reachable for r in results] == [True, False]
    assert results[0].rtt_ms is not None
    assert "TCP connect failed" in results[1].detail


def test_icmp_reaches_loopback_as_root():
    if os.geteuid() != 0:
        pytest.skip("privileged ICMP needs root; unprivileged ICMP needs net.ipv4.ping_group_range")
    [result] = probe([Target("127.0.0.1")], timeout=1)
    assert result.reachable
    assert result.detail == "answered ICMP echo"
