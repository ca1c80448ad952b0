"""A pair upgraded one site at a time, as the README says, while a client keeps writing.

Both sites start on the previous release (tests/releases.py: built from git and
run from its unpacked wheel), paired, the first one primary. Then the README's
procedure: upgrade the backup to this code, Sync Now (old primary to new backup),
Become Primary with a final sync on it, which hands the role across the two
releases; the old primary, now backup, syncs from the new one (new to old); then
it is upgraded and, last, the roles are switched back.

A client writes reports throughout, to whichever site takes them. Every write
the client saw acknowledged is on both sites at the end, and the longest time
without an acknowledged write is no longer than one switchover.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time

import pytest
import requests

from appliance.version import SOFTWARE_VERSION
from tests.releases import unpacked, version_of
from tests.sites import Site, wait_until

pytestmark = pytest.mark.processes
KEY = "rolling upgrade shared key 01"
PASSWORD = "rolling upgrade admin password 01"
TOKEN = "1" * 40
# How long the client may take, beyond a switchover, to find the new primary: a refused
# write, or one timed out against the frozen primary, and the next attempt at the other.
FINDING_THE_PRIMARY_SECONDS = 12.0
WRITER_LIMIT_SECONDS = 900


class Writer(threading.Thread):
    """A client writing a report every few tens of milliseconds to the site that takes it.

    A write counts once the site answered 201. After any other answer the client
    tries the other site next, as a client of a pair behind two addresses would.
    """

    def __init__(self, sites: tuple[Site, Site]) -> None:
        super().__init__(daemon=True)
        self.sites = sites
        self.target = 0
        self.acknowledged: list[tuple[str, float]] = []
        self.refused: dict[str, int] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Token {TOKEN}"
        deadline = time.monotonic() + WRITER_LIMIT_SECONDS
        n = 0
        while not self.stopping.is_set() and time.monotonic() < deadline:
            n += 1
            name = f"upgrade-{n}"
            site = self.sites[self.target]
            try:
                answer = session.post(
                    f"{site.url}/api/v1/reports/",
                    json={
                        "representative": "writer",
                        "customer_name": name,
                        "started_at": "2026-11-26T10:00:00Z",
                        "outcome": "resolved",
                    },
                    timeout=(1, 5),
                )
                status = answer.status_code
            except requests.RequestException as error:
                status = type(error).__name__
            if status == 201:
                self.acknowledged.append((name, time.monotonic()))
            else:
                key = f"{site.name}: {status}"
                self.refused[key] = self.refused.get(key, 0) + 1
                self.target = 1 - self.target
            self.stopping.wait(0.03)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)

    def written(self) -> set[str]:
        return {name for name, _ in self.acknowledged}

    def longest_silence(self) -> float:
        moments = [at for _, at in self.acknowledged]
        return max((b - a for a, b in itertools.pairwise(moments)), default=0.0)

    def count(self) -> int:
        return len(self.acknowledged)


@pytest.fixture
def old_pair(tmp_path):
    """Two sites of the previous release, paired (the first primary) and synced."""
    release = unpacked()
    sites = [
        Site(name, tmp_path, release=release, PEER_CHECK_SECONDS="2")
        for name in ("upgrade-a", "upgrade-b")
    ]
    try:
        for site in sites:
            site.launch()
        for site in sites:
            site.wait_ready()
            site.manage("failover", "set-key", stdin=KEY + "\n")
        first, second = sites
        first.manage("ensureadmin", "admin", stdin=PASSWORD + "\n")
        first.manage(
            "failover", "establish",
            "--backup-host", "127.0.0.1", "--backup-port", str(second.port),
            "--reverse-host", "127.0.0.1", "--reverse-port", str(first.port),
        )  # fmt: skip
        assert wait_until(lambda: has_admin(second), timeout=180), second.log("worker.log")
        for site in sites:
            give_token(site)
        yield first, second
    finally:
        for site in sites:
            site.destroy()


def has_admin(site: Site) -> bool:
    return site.count("auth_user", "WHERE username = %s", ("admin",)) == 1


def give_token(site: Site) -> None:
    """The client's API token for the administrator (tokens are each site's own)."""
    site.shell(
        "from django.contrib.auth.models import User\n"
        "from rest_framework.authtoken.models import Token\n"
        "user = User.objects.get(username='admin')\n"
        f"Token.objects.filter(key={TOKEN!r}).exclude(user=user).delete()\n"
        f"Token.objects.get_or_create(key={TOKEN!r}, defaults={{'user': user}})"
    )


def names(site: Site) -> set[str]:
    return {
        name
        for (name,) in site.rows(
            "SELECT customer_name FROM appliance_report WHERE customer_name LIKE %s",
            ("upgrade-%",),
        )
    }


def switch_over(to: Site, writer: Writer) -> float:
    """Become Primary with a final sync on `to`; how long it took."""
    began = time.monotonic()
    result = to.manage("failover", "become-primary", "--sync-first")
    assert "now primary" in result.stdout, result.stdout + result.stderr
    return time.monotonic() - began


def check(site: Site) -> dict[str, dict]:
    found = json.loads(site.manage("failover", "check", "--json", check=False).stdout)
    return {item["name"]: item for item in found}


def latest_sync(site: Site) -> int:
    return site.rows("SELECT MAX(id) FROM failover_syncrun")[0][0] or 0


def latest_succeeded_sync(site: Site) -> int:
    found = site.rows("SELECT MAX(id) FROM failover_syncrun WHERE status = 'succeeded'")
    return found[0][0] or 0


def test_a_pair_upgraded_one_site_at_a_time_keeps_every_write_and_a_primary(old_pair):
    a, b = old_pair
    previous = version_of(unpacked())
    assert previous != SOFTWARE_VERSION
    writer = Writer((a, b))
    writer.start()
    assert wait_until(lambda: writer.count() >= 20, timeout=120), writer.refused
    switchovers: list[float] = []
    try:
        # 1. Upgrade the backup. The new code works with the old primary, and says so.
        b.upgrade()
        assert b.cli_status()["version"] == SOFTWARE_VERSION
        assert wait_until(lambda: b.status()["peer"]["reachable"], timeout=120), b.status()["peer"]
        version = check(b)["version"]
        assert version["ok"], version
        assert f"upgrade-a {previous} (peer protocol 1, sync format 2)" in version["detail"]
        assert "they work together" in version["detail"]

        # 2. Sync Now: from the old primary to the new backup.
        synced = b.manage("failover", "sync-now", "--wait", "--timeout", "300")
        assert "succeeded" in synced.stdout, synced.stdout + synced.stderr
        assert wait_until(lambda: writer.count() >= 60, timeout=120), writer.refused

        # 3. Become Primary with a final sync: the role crosses from the old to the new.
        switchovers.append(switch_over(b, writer))
        assert wait_until(lambda: a.role() == "backup", timeout=120), a.log("worker.log")
        assert b.role() == "primary"

        # The old release, now backup, syncs from the new primary.
        before = latest_succeeded_sync(a)
        assert wait_until(lambda: writer.count() >= 120, timeout=120), writer.refused
        a.manage("failover", "sync-now")
        assert wait_until(lambda: latest_succeeded_sync(a) > before, timeout=300), a.rows(
            "SELECT id, status, attempts, error FROM failover_syncrun ORDER BY id"
        )
        assert wait_until(lambda: writer.written() - names(b) == set(), timeout=60)

        # 4. Upgrade the old primary; both now run this code.
        upgraded_after = latest_sync(a)
        a.upgrade()
        assert a.cli_status()["version"] == SOFTWARE_VERSION
        assert wait_until(lambda: check(a)["version"]["detail"].startswith("Both run"), 120)
        # The client's API token comes back with this sync: while it ran the release
        # before, the new primary sent it no tokens (format 2 carried keys, which this
        # release no longer keeps), and now they travel as digests. Its data came in
        # format 2, so the primary sends everything once: to this sync, or to the full
        # resync that continuous replication asked for first.
        synced = a.manage("failover", "sync-now", "--wait", "--timeout", "300")
        assert "succeeded" in synced.stdout, synced.stdout + synced.stderr
        full_since = "WHERE id > %s AND status = 'succeeded' AND full = %s"
        assert a.count("failover_syncrun", full_since, (upgraded_after, True)) >= 1
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        assert a.count("appliance_apitoken", "WHERE digest = %s", (digest,)) == 1

        # 5. Optionally, the roles back as they were.
        assert wait_until(lambda: writer.count() >= 180, timeout=120), writer.refused
        switchovers.append(switch_over(a, writer))
        assert wait_until(lambda: b.role() == "backup", timeout=120), b.log("worker.log")
        assert wait_until(lambda: writer.count() >= 240, timeout=120), writer.refused
    finally:
        writer.stop()

    # Every acknowledged write is on the primary, and reaches the backup.
    written = writer.written()
    assert written - names(a) == set()
    assert wait_until(lambda: written - names(b) == set(), timeout=120), len(written - names(b))
    # Never longer without a primary taking writes than one switchover.
    assert writer.longest_silence() <= max(switchovers) + FINDING_THE_PRIMARY_SECONDS, (
        writer.longest_silence(),
        switchovers,
        writer.refused,
    )


def test_establishing_with_a_site_of_the_release_before_says_to_upgrade_it(tmp_path):
    """That release pairs only with its own version and knows no per-pair keys: it
    refuses this site's first call as a key mismatch, which it is not."""
    old = Site("upgrade-old", tmp_path, release=unpacked())
    new = Site("upgrade-new", tmp_path)
    try:
        for site in (old, new):
            site.launch()
        for site in (old, new):
            site.wait_ready()
            site.manage("failover", "set-key", stdin=KEY + "\n")
        refused = new.manage(
            "failover", "establish",
            "--backup-host", "127.0.0.1", "--backup-port", str(old.port),
            "--reverse-host", "127.0.0.1", "--reverse-port", str(new.port),
            check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert f"runs {version_of(unpacked())}, a release from before this one" in refused.stderr
        assert f"Upgrade it to this site's version ({SOFTWARE_VERSION}) first" in refused.stderr
        assert "key mismatch" not in refused.stderr
        assert new.status()["role"] == "none"
        assert old.status()["role"] == "none"
    finally:
        for site in (old, new):
            site.destroy()
