"""Every way to move the service, in the namespace lab: IPv6 shared IP, DNS swing, hooks.

The sites share an IPv4 and an IPv6 address, swing support.failover.test at a
real Knot server in the outside namespace, and run two takeover hooks: one
records what it was told and whether the addresses were on the interface when
it ran, the other fails as a hook that cannot reach its firewall would. The
client measures the IPv6 shared address as the IPv4 test does
(tests/lab_client/watch.py). How fast each method is followed is the
benchmark's question (bench/takeover_methods.py, docs/BENCHMARKS.md); here,
that clients follow at all, and in the promised order.
"""

from __future__ import annotations

import time

import pytest

from tests.dns_server import NAME, make_secret, require_knot
from tests.lab import SHARED6_IP, SITES, Lab, LabError, address, address6
from tests.lab_fixtures import require_lab
from tests.sites import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.lab]
POLL, TIMEOUT = 1, 3

RECORD_HOOK = """#!/bin/sh
held4=no; held6=no
ip -o addr show dev eth0 | grep -q " $FAILOVER_SHARED_IPV4 " && held4=yes
ip -o addr show dev eth0 | grep -q " $FAILOVER_SHARED_IPV6 " && held6=yes
echo "$1 $2 held4=$held4 held6=$held6 addresses=$3,$4" >> '{log}'
"""
NAT_HOOK = """#!/bin/sh
echo "cannot reach the firewall to move the NAT rule" >&2
exit 3
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_lab()
    require_knot()
    hooks = {"10-record": RECORD_HOOK, "20-nat": NAT_HOOK}
    with Lab(tmp_path_factory.mktemp("lab"), ipv6=True, dns=True, hooks=hooks) as built:
        built.up()
        for site in built.sites.values():
            site.shell(
                "from failover.models import AlertSettings\n"
                "AlertSettings(email_recipients='ops@example.com').save()"
            )
        yield built


@pytest.fixture(autouse=True)
def healthy(lab: Lab) -> None:
    """Both sites up, no faults, one primary holding both addresses and named by the DNS."""
    lab.heal()
    for site in SITES:
        lab.cut_link(site, down=False)
        if lab.sites[site].process is None or lab.sites[site].process.poll() is not None:
            lab.restart(site)
    lab.configure_monitor(poll=POLL, timeout=TIMEOUT)

    def settled() -> bool:
        try:
            primary = lab.current()[0]
        except LabError:
            return False
        return lab.holders() == lab.holders6() == {primary} and names(lab) == primary

    assert wait_until(settled, 180), f"lab did not settle: {lab.holders6()}, {names(lab)}"


def names(lab: Lab) -> str:
    """Which site support.failover.test names, by its A and AAAA records ("" if neither)."""
    found = (lab.dns.answer(NAME, "A"), lab.dns.answer(NAME, "AAAA"))
    return next((s for s in SITES if found == ([address(s)], [address6(s)])), "")


def hook_runs(lab: Lab, site: str) -> list[str]:
    log = lab.hook_log(site)
    return log.read_text().splitlines() if log.exists() else []


def kinds_since(lab: Lab, site: str, count: int) -> list[str]:
    return lab.events(site)[count:]


def test_a_client_follows_an_ipv6_takeover_and_the_name_and_the_hooks_follow(lab):
    primary, backup = lab.current()
    seen, ran = len(lab.events(backup)), len(hook_runs(lab, backup))
    # The client trusts its neighbour entries for ten minutes: it reaches the new holder
    # only because the advertisement tells it to, not because its own entry expired.
    lab.keep_neighbours(600)
    watcher = lab.watch(SHARED6_IP)
    try:
        assert watcher.wait_for(True, 60), "the client cannot reach the IPv6 shared IP before"
        assert lab.neighbour(SHARED6_IP) == lab.macs[primary]
        lab.power_off(primary)
        assert watcher.wait_for(False, 60)
        back = watcher.wait_for(True, TIMEOUT + 180)
    finally:
        watcher.stop()
    assert back, lab.sites[backup].log("network.log")
    # /check_health answers one line; the role is read from the site's own store.
    assert back["body"] in ("This site is healthy.\n", "This site is not healthy.\n")
    assert lab.stored_role(backup)[0] == "primary"
    assert lab.neighbour(SHARED6_IP) == lab.macs[backup]
    assert lab.holders6() == lab.holders() == {backup}
    # The DNS swing follows: the name leads to the new primary, as its history says.
    assert wait_until(lambda: names(lab) == backup, 60), names(lab)
    history = kinds_since(lab, backup, seen)
    assert "failover" in history and "dns" in history
    # The hooks ran after the claim: the addresses were already on the interface.
    epoch = lab.stored_role(backup)[1]
    assert wait_until(lambda: len(hook_runs(lab, backup)) > ran, 60)
    assert hook_runs(lab, backup)[ran:] == [
        f"primary {epoch} held4=yes held6=yes addresses=10.231.0.100/24,fd00:231::100/64"
    ]
    # The failing hook is in the history with its status and output, and alerted by mail.
    assert wait_until(lambda: "hook_failed" in kinds_since(lab, backup, seen), 60)
    failed = lab.sites[backup].rows(
        "SELECT message FROM failover_failoverevent WHERE kind = 'hook_failed' "
        "ORDER BY id DESC LIMIT 1"
    )[0][0]
    assert f"Hook 20-nat (primary, epoch {epoch})" in failed
    assert "exited with status 3" in failed
    assert "cannot reach the firewall to move the NAT rule" in failed
    mail = lab.sites[backup].data_dir / "mail"
    assert wait_until(
        lambda: any("Takeover hook failed" in p.read_text() for p in mail.glob("*.log")), 60
    ), "no alert was written for the failed hook"


def test_the_old_primary_returns_as_backup_without_taking_the_ipv6_address_or_the_name(lab):
    primary, backup = lab.current()
    lab.power_off(primary)
    assert wait_until(lambda: lab.holders6() == {backup} and names(lab) == backup, TIMEOUT + 120)
    ran = len(hook_runs(lab, primary))
    lab.power_on(primary, wait=False)
    sampled = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert lab.holders6() == {backup}, f"{primary} took the IPv6 address on its return"
        assert lab.holders() == {backup}, f"{primary} took the IPv4 address on its return"
        sampled += 1
        if lab.stored_role(primary)[0] == "backup" and lab.sites[primary].get("/login") == 200:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"{primary} did not come back as backup:\n{lab.sites[primary].log()}")
    assert sampled > 10
    assert lab.stored_role(backup)[0] == "primary", "no automatic failback"
    # It runs its "backup" hooks for the role change it learnt of, and swings nothing.
    epoch = lab.stored_role(primary)[1]
    assert wait_until(lambda: len(hook_runs(lab, primary)) > ran, 60)
    assert hook_runs(lab, primary)[ran].startswith(f"backup {epoch} ")
    assert names(lab) == backup and lab.holders6() == {backup}


def test_failover_check_in_the_lab_names_a_wrong_tsig_secret(lab):
    _primary, backup = lab.current()
    site = lab.sites[backup]
    set_secret = (
        "from failover.models import DNSSwing\ns = DNSSwing.load(); s.store_secret({!r}); s.save()"
    )
    site.shell(set_secret.format(make_secret()))
    try:
        checked = site.manage("failover", "check", check=False)
        line = next(line for line in checked.stdout.splitlines() if "dns swing" in line)
        assert line.startswith("FAIL"), line
        assert (
            f"The DNS server {address('outside')}:53 rejected the signature made with TSIG key "
            "failover-key (BADSIG)" in line
        )
        assert checked.returncode != 0
    finally:
        site.shell(set_secret.format(lab.dns.secret))
    checked = site.manage("failover", "check", check=False)
    line = next(line for line in checked.stdout.splitlines() if "dns swing" in line)
    assert line.startswith("ok"), line
