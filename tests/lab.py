"""The two-site lab: a primary, a backup, a client and the outside world in network namespaces.

    switch namespace:  br0 ── p-primary ─ eth0 (primary  10.231.0.11, shared 10.231.0.100)
                           ├─ p-backup  ─ eth0 (backup   10.231.0.12)
                           ├─ p-client  ─ eth0 (client   10.231.0.20)
                           └─ p-outside ─ eth0 (outside  10.231.0.30, answers the test IPs)

Every host also has an IPv6 address on the same link (fd00:231::11, ...; the
IPv6 shared address is fd00:231::100). With `ipv6`, the sites share it too;
with `dns`, the outside world runs an authoritative DNS server (Knot) for
failover.test and each site swings support.failover.test to itself when it
becomes primary; with `hooks`, each site runs the given takeover hooks.

Each site namespace runs a complete site (web over TLS on 443, worker, beat, its
own embedded Redis and SQLite database) with the Linux shared-IP driver, so the
shared address really moves between the namespaces and is announced with
gratuitous ARP. Every address lives only inside these namespaces, and every
process that sends to them runs inside them.

Faults are applied where they would happen on a real network: a port of the
switch goes down (cut link), frames between two ports are dropped by nftables
on the switch's ingress hooks (partition, cut off from the outside, random loss),
a site's processes are killed at once (crash), or a site runs with its clock
skewed (libfaketime). `tc netem` is used for delay where the kernel has it.

One command: `python -m tests.lab up` builds and pairs a lab and prints how to
reach it; `python -m tests.lab down` removes every lab namespace and process.
Tests use the `lab` fixture (tests/test_lab_*.py), which tears down also when
a test fails; an interrupted run's leftovers are removed by `down` and by the
next lab that starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.certs import Certificate, make_ca
from tests.dns_server import ALGORITHM, KEY_NAME, NAME, ZONE, Knot
from tests.sites import ROOT, Site, wait_until

PREFIX = "aflab"
SUBNET = "10.231.0"
ADDRESSES = {"primary": 11, "backup": 12, "client": 20, "outside": 30}
SHARED_IP = f"{SUBNET}.100"
SHARED = f"{SHARED_IP}/24"
SUBNET6 = "fd00:231::"
SHARED6_IP = f"{SUBNET6}100"
SHARED6 = f"{SHARED6_IP}/64"
KEY = "lab pre-shared key, long enough 01"
ADMIN_PASSWORD = "lab admin password 1"
FAKETIME_LIB = next(
    (str(p) for p in Path("/usr/lib").glob("*/faketime/libfaketime.so.1")),
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
)
SITES = ("primary", "backup")
# Peer checks (and the reconcile of the shared IP) every 3 s, heartbeats every
# 5 s: quick enough for the tests to see each step, and light enough that four
# labs' eight idle sites do not fill a two-core machine with periodic tasks.
LAB_SITE_ENV = {"PEER_CHECK_SECONDS": "3", "HEARTBEAT_SECONDS": "5"}


class LabError(Exception):
    pass


def missing_tools() -> list[str]:
    """What the lab needs and this machine lacks (tests skip naming it)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root (network namespaces; CI runs as root)")
    for tool in ("ip", "nft", "curl"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} (tests/setup-lab installs it)")
    return problems


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


def address(role: str) -> str:
    return f"{SUBNET}.{ADDRESSES[role]}"


def address6(role: str) -> str:
    return f"{SUBNET6}{ADDRESSES[role]}"


def lab_namespaces() -> list[str]:
    listed = run("ip", "netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listed if line.startswith(PREFIX + "-")]


def kill_namespace_processes(name: str) -> None:
    """SIGKILL every process inside a namespace (bounded: a few rounds)."""
    for _ in range(5):
        pids = [int(p) for p in run("ip", "netns", "pids", name, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def remove_all() -> list[str]:
    """Remove every lab namespace (and so every interface in it) with its processes."""
    names = lab_namespaces()
    for name in names:
        kill_namespace_processes(name)
        run("ip", "netns", "del", name, check=False)
    return names


class Lab:
    """One lab; `up()` builds it, `down()` removes all of it. Use as a context manager."""

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        tag: str | None = None,
        ipv6: bool = False,
        dns: bool = False,
        hooks: dict[str, str] | None = None,
    ) -> None:
        """`ipv6`: the sites share SHARED6 as well; `dns`: a DNS server outside and the
        DNS swing on both sites; `hooks`: takeover hooks (name: script) on both sites."""
        self.tag = tag or uuid.uuid4().hex[:6]
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{self.tag}-"))
        self.spaces = {
            role: f"{PREFIX}-{self.tag}-{role}"
            for role in ("switch", "primary", "backup", "client", "outside")
        }
        self.macs: dict[str, str] = {}
        self.sites: dict[str, Site] = {}
        self.ca: Certificate | None = None
        # Active faults on the switch: (from_port, to_role) pairs dropped, with a percentage.
        self._drops: dict[tuple[str, str], int] = {}
        self.skewed: dict[str, int] = {}
        self.ipv6, self.hooks = ipv6, hooks or {}
        self.dns: Knot | None = (
            Knot(address("outside"), 53, netns=self.spaces["outside"]) if dns else None
        )

    # Building and removing -------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def in_ns(self, role: str, *argv: str, check: bool = True, timeout: float = 30):
        return run("ip", "netns", "exec", self.spaces[role], *argv, check=check, timeout=timeout)

    def build_network(self, *, keep: bool = False) -> None:
        owner_file(self.tag).write_text("keep" if keep else str(os.getpid()))
        for name in self.spaces.values():
            run("ip", "netns", "add", name)
            run("ip", "-n", name, "link", "set", "lo", "up")
        switch = self.spaces["switch"]
        run("ip", "-n", switch, "link", "add", "br0", "type", "bridge", "stp_state", "0",
            "forward_delay", "0")  # fmt: skip
        run("ip", "-n", switch, "link", "set", "br0", "up")
        for role in ADDRESSES:
            port = f"p-{role}"
            run("ip", "link", "add", "name", port, "netns", switch, "type", "veth",
                "peer", "name", "eth0", "netns", self.spaces[role])  # fmt: skip
            run("ip", "-n", switch, "link", "set", port, "master", "br0", "up")
            run("ip", "-n", self.spaces[role], "addr", "add", f"{address(role)}/24", "dev", "eth0")
            run("ip", "-n", self.spaces[role], "addr", "add", f"{address6(role)}/64", "dev", "eth0",
                "nodad")  # fmt: skip
            run("ip", "-n", self.spaces[role], "link", "set", "eth0", "up")
            link = run("ip", "-n", self.spaces[role], "-o", "link", "show", "eth0").stdout
            self.macs[role] = link.split("link/ether ")[1].split()[0]
        for role in SITES:
            self.in_ns(role, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")
        self._apply_switch_rules()
        if self.dns is not None:
            self.dns.start()

    def configure_monitor(
        self, *, poll: int = 1, timeout: int = 2, test_ips: str | None = None, enabled: bool = True
    ) -> None:
        """Automatic failover settings on both sites (whichever is backup uses them)."""
        ips = address("outside") if test_ips is None else test_ips
        for site in self.sites.values():
            site.shell(
                "from failover.models import BackupSettings\nfrom failover import schedule\n"
                f"s = BackupSettings.load(); s.automatic_failover = {enabled!r}\n"
                f"s.poll_interval_seconds = {poll}; s.primary_timeout_seconds = {timeout}\n"
                f"s.connectivity_test_ips = {ips!r}; s.save(); schedule.apply(s)"
            )

    def current(self) -> tuple[str, str]:
        """(primary, backup) by the sites' own stored roles."""
        roles = {site: self.stored_role(site)[0] for site in SITES}
        primaries = [site for site, role in roles.items() if role == "primary"]
        if len(primaries) != 1:
            raise LabError(f"expected one primary, the sites say {roles}")
        return primaries[0], next(site for site in SITES if site != primaries[0])

    def start_sites(self, *, key: bool = True, **env: str) -> None:
        self.ca = make_ca(self.base_dir)
        for role in SITES:
            site = Site(
                role,
                self.base_dir,
                ca=self.ca,
                netns=self.spaces[role],
                host=address(role),
                extra_hosts=(SHARED_IP, SHARED6_IP, address6(role)),
                SHARED_IP_DRIVER="linux",
                PEER_CA_BUNDLE="",
                **{**LAB_SITE_ENV, **env},
            )
            site.prepare(
                key=KEY if key else None,
                admin_password=ADMIN_PASSWORD,
                python=(
                    "from failover.models import SharedIP\n"
                    f"SharedIP(enabled=True, address={SHARED!r}, "
                    f"address6={SHARED6 if self.ipv6 else ''!r}, interface='eth0').save()\n"
                    + (self._dns_swing(role) if self.dns is not None else "")
                ),
            )
            if self.hooks:
                self._install_hooks(site)
            self.sites[role] = site
        for site in self.sites.values():
            site.launch()
        for site in self.sites.values():
            site.wait_ready(timeout=180)

    def _dns_swing(self, role: str) -> str:
        """The DNS swing, as code for the site's shell: the name points at this site's own
        addresses when it is primary."""
        return (
            "from failover.models import DNSSwing\n"
            f"s = DNSSwing(enabled=True, server={address('outside')!r}, port=53, zone={ZONE!r}, "
            f"name={NAME!r}, ttl=30, key_name={KEY_NAME!r}, algorithm={ALGORITHM!r}, "
            f"ipv4={address(role)!r}, ipv6={address6(role)!r})\n"
            f"s.store_secret({self.dns.secret!r}); s.save()"
        )

    def _install_hooks(self, site: Site) -> None:
        folder = site.data_dir / "hooks.d"
        folder.mkdir(mode=0o755, exist_ok=True)
        for name, script in self.hooks.items():
            path = folder / name
            path.write_text(script.replace("{log}", str(self.hook_log(site.name))))
            path.chmod(0o755)
        site.env["FAILOVER_HOOKS_DIR"] = str(folder)

    def hook_log(self, site: str) -> Path:
        """Where the lab's hooks of `site` may write (the `{log}` in their scripts)."""
        return self.base_dir / site / "hooks.log"

    def pair(self) -> None:
        """Establish from the primary and wait for the first sync and the shared IP."""
        primary, backup = self.sites["primary"], self.sites["backup"]
        primary.manage(
            "failover", "establish",
            "--backup-host", address("backup"), "--backup-port", "443",
            "--reverse-host", address("primary"), "--reverse-port", "443",
            "--backup-fingerprint", backup.certificate_fingerprint,
        )  # fmt: skip
        if not wait_until(lambda: self.last_sync("backup") == "succeeded", timeout=180):
            raise LabError(f"the first sync did not finish:\n{backup.log('worker.log')}")
        if not wait_until(lambda: self.holders() == {"primary"}, timeout=120):
            raise LabError(f"the primary did not take {SHARED}: holders {self.holders()}")

    def up(self, *, keep: bool = False, pair: bool = True, **env: str) -> Lab:
        """Build the network and start both sites; with `pair`, set the key and establish."""
        remove_stale()
        try:
            self.build_network(keep=keep)
            self.start_sites(key=pair, **env)
            if pair:
                self.pair()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        for site in self.sites.values():
            with contextlib.suppress(Exception):
                site.kill()
        if self.dns is not None:
            with contextlib.suppress(Exception):
                self.dns.stop()
        for name in self.spaces.values():
            kill_namespace_processes(name)
            run("ip", "netns", "del", name, check=False)
        owner_file(self.tag).unlink(missing_ok=True)

    # Looking -----------------------------------------------------------------------------

    def holders(self, shared: str = SHARED) -> set[str]:
        """Which site namespaces have the shared address on eth0, read from the kernel."""
        found = set()
        for role in SITES:
            shown = run("ip", "-n", self.spaces[role], "-o", "addr", "show", "dev", "eth0",
                        check=False).stdout  # fmt: skip
            if f" {shared} " in shown:
                found.add(role)
        return found

    def holders6(self) -> set[str]:
        return self.holders(SHARED6)

    def neighbour(self, ip: str, role: str = "client") -> str:
        """The MAC in a host's neighbour cache for `ip` ("" when it has none)."""
        shown = run("ip", "-n", self.spaces[role], "neigh", "show", ip, check=False).stdout
        return shown.split("lladdr ")[1].split()[0] if "lladdr " in shown else ""

    def keep_neighbours(self, seconds: int, role: str = "client") -> None:
        """A host trusts its neighbour entries this long (base_reachable_time): it then
        switches MAC only when told to (an advertisement), not by a timeout of its own."""
        ms = str(seconds * 1000)
        self.in_ns(role, "sysctl", "-qw", f"net.ipv6.neigh.eth0.base_reachable_time_ms={ms}",
                   f"net.ipv4.neigh.eth0.base_reachable_time_ms={ms}")  # fmt: skip

    def stored_role(self, site: str) -> tuple[str, int]:
        """(role, epoch) straight from the site's database: fast enough to sample."""
        found = self.sites[site].rows("SELECT role, epoch FROM failover_failoverstate WHERE id = 1")
        return (found[0][0], found[0][1]) if found else ("", 0)

    def role(self, site: str) -> str:
        return self.stored_role(site)[0]

    def status(self, site: str) -> dict[str, Any]:
        return self.sites[site].status()

    def last_sync(self, site: str) -> str:
        run = self.sites[site].latest_run()
        return run["status"] if run else ""

    def events(self, site: str) -> list[str]:
        return self.sites[site].event_kinds()

    # Faults ------------------------------------------------------------------------------

    def crash(self, site: str) -> None:
        """Every process of the site dies at once (web, worker, beat, Redis)."""
        self.sites[site].process = None
        kill_namespace_processes(self.spaces[site])

    def power_off(self, site: str) -> None:
        """The machine dies: its processes, its link, and with them the addresses it held."""
        self.cut_link(site)
        self.crash(site)
        for shared in (SHARED, SHARED6):
            run("ip", "-n", self.spaces[site], "addr", "del", shared, "dev", "eth0", check=False)

    def power_on(self, site: str, *, wait: bool = True) -> None:
        """The machine comes back: link up, site started (as after a reboot)."""
        self.cut_link(site, down=False)
        self.restart(site, wait=wait)

    def watch(
        self,
        host: str = SHARED_IP,
        port: int = 443,
        *,
        tls: bool = True,
        limit: float = 300,
        interval: float = 0.05,
        timeout: float = 0.2,
        connect_timeout: float | None = None,
    ) -> Watcher:
        """Start a client in its namespace that reports when `host:port` goes down and up
        (tests/lab_client/watch.py: a request every `interval`, given up after `timeout`,
        its connection after `connect_timeout`, by default the same)."""
        args = [
            host, str(port), "--limit", str(limit), "--interval", str(interval),
            "--timeout", str(timeout), "--connect-timeout", str(connect_timeout or timeout),
        ]  # fmt: skip
        return Watcher(self, "watch.py", *args, *(["--tls"] if tls else []))

    def watch_dns(self, name: str = NAME, *, limit: float = 300) -> Watcher:
        """Start a client that reports each change of the lab's DNS server's answer for `name`
        (A and AAAA), as a resolver asking the authoritative server would see it."""
        return Watcher(self, "dns_watch.py", address("outside"), "53", name, "--limit", str(limit))

    def writer(
        self, token: str, *, tag: str = "w", limit: float = 300, progress: Path | None = None
    ) -> subprocess.Popen[str]:
        """Start a client that keeps writing reports to the shared IP (tests/lab_client/writer.py).

        Close its stdin to stop it; its last line of output is the JSON summary. With
        `progress`, that file gets a line per acknowledged write as it happens.
        """
        extra = ["--progress", str(progress)] if progress else []
        writer = subprocess.Popen(
            ["ip", "netns", "exec", self.spaces["client"], sys.executable,
             str(ROOT / "tests" / "lab_client" / "writer.py"), SHARED_IP, token,
             str(self.ca.cert_path), "--tag", tag, "--limit", str(limit), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        assert json.loads(writer.stdout.readline()) == {"started": True}
        return writer

    def api_token(self, key: str = "0" * 43) -> str:
        """The same API token for the administrator on both sites (tokens are per site)."""
        for site in self.sites.values():
            site.shell(
                "from django.contrib.auth.models import User\n"
                "from appliance.models import ApiToken\n"
                "user = User.objects.get(username='admin')\n"
                f"digest = ApiToken.digest_of({key!r})\n"
                "ApiToken.objects.filter(digest=digest).exclude(user=user).delete()\n"
                "ApiToken.objects.update_or_create(user=user, defaults={'digest': digest})"
            )
        return key

    def restart(self, site: str, *, wait: bool = True) -> None:
        self.sites[site].kill()
        kill_namespace_processes(self.spaces[site])
        self.sites[site].launch()
        if wait:
            self.sites[site].wait_ready(timeout=180)

    def cut_link(self, role: str, *, down: bool = True) -> None:
        run("ip", "-n", self.spaces["switch"], "link", "set", f"p-{role}",
            "down" if down else "up")  # fmt: skip

    def drop(self, a: str, b: str, percent: int = 100) -> None:
        """Drop frames between hosts `a` and `b`, both ways (at the switch)."""
        self._drops[(a, b)] = percent
        self._drops[(b, a)] = percent
        self._apply_switch_rules()

    def undrop(self, a: str, b: str) -> None:
        self._drops.pop((a, b), None)
        self._drops.pop((b, a), None)
        self._apply_switch_rules()

    def partition(self) -> None:
        """The two sites cannot reach each other; both still reach the client and outside."""
        self.drop("primary", "backup")

    def heal(self) -> None:
        self._drops.clear()
        self._apply_switch_rules()

    def cut_off_outside(self, site: str) -> None:
        self.drop(site, "outside")

    def _apply_switch_rules(self) -> None:
        lines = ["flush ruleset", "table netdev lab {"]
        for role in ADDRESSES:
            lines.append(
                f'  chain from_{role} {{ type filter hook ingress device "p-{role}" '
                "priority 0; policy accept;"
            )
            for (src, dst), percent in self._drops.items():
                if src != role:
                    continue
                rule = f"    ether daddr {self.macs[dst]}"
                if percent < 100:
                    rule += f" numgen random mod 100 < {percent}"
                lines.append(rule + " drop")
            lines.append("  }")
        lines.append("}")
        subprocess.run(
            ["ip", "netns", "exec", self.spaces["switch"], "nft", "-f", "-"],
            input="\n".join(lines) + "\n", text=True, check=True, capture_output=True,
        )  # fmt: skip

    def delay(self, role: str, milliseconds: int) -> None:
        """Delay every packet a host sends (tc netem), where the kernel has netem."""
        result = self.in_ns(role, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem",
                            "delay", f"{milliseconds}ms", check=False)  # fmt: skip
        if result.returncode != 0:
            raise LabError(f"tc netem is not available here: {result.stderr.strip()}")

    def skew_clock(self, site: str, seconds: int) -> None:
        """Restart a site with its clock `seconds` off (libfaketime), as its peer sees it."""
        if not os.path.exists(FAKETIME_LIB):
            raise LabError(f"{FAKETIME_LIB} is missing (tests/setup-lab installs faketime)")
        env = self.sites[site].env
        if seconds:
            env.update(
                LD_PRELOAD=FAKETIME_LIB,
                # The monotonic clock moves by the same offset: its readings are only
                # ever subtracted, and leaving it alone breaks sleeping (EINVAL).
                FAKETIME=f"{seconds:+d}s",
            )
        else:
            for name in ("LD_PRELOAD", "FAKETIME"):
                env.pop(name, None)
        self.skewed[site] = seconds
        self.restart(site)


class Watcher:
    """The client's view of a service: a process in the client namespace reporting changes
    (tests/lab_client/watch.py for an address, dns_watch.py for a name), one JSON line each."""

    def __init__(self, lab: Lab, script: str, *args: str) -> None:
        argv = ["ip", "netns", "exec", lab.spaces["client"], sys.executable,
                str(ROOT / "tests" / "lab_client" / script), *args]  # fmt: skip
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.changes: list[dict[str, Any]] = []
        self._unread = b""

    def next_change(self, timeout: float) -> dict[str, Any] | None:
        """The next line the client printed, within `timeout` seconds (None: none came).

        The pipe is read with os.read, not a buffered readline: a buffered read may take
        two lines at once, and select() would then wait for more while one sits unread.
        """
        deadline = time.monotonic() + timeout
        while b"\n" not in self._unread:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, left))
            if not ready:
                return None
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return None
            self._unread += chunk
        line, self._unread = self._unread.split(b"\n", 1)
        change = json.loads(line)
        self.changes.append(change)
        return change

    def wait_for(self, up: bool, timeout: float) -> dict[str, Any] | None:
        """The next change to `up` (down when False) within `timeout` seconds."""
        return self.wait_until(lambda change: change["up"] is up, timeout)

    def wait_until(
        self, wanted: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """The next change that is `wanted`, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            change = self.next_change(left)
            if change is None:
                return None
            if wanted(change):
                return change
        return None

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def owner_file(tag: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{PREFIX}-{tag}.owner"


def remove_stale() -> None:
    """Remove labs whose creator is gone (an interrupted run), not those of running tests.

    Each lab writes the pid of the process that made it; the command line's lab
    writes "keep" and stays until `python -m tests.lab down`.
    """
    for name in lab_namespaces():
        tag = name.removeprefix(PREFIX + "-").rsplit("-", 1)[0]
        path = owner_file(tag)
        owner = path.read_text().strip() if path.exists() else ""
        if owner == "keep" or (owner.isdigit() and Path(f"/proc/{owner}").exists()):
            continue
        kill_namespace_processes(name)
        run("ip", "netns", "del", name, check=False)
        path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "up":
        if problems := missing_tools():
            print("the lab needs: " + "; ".join(problems), file=sys.stderr)
            return 2
        lab = Lab(tag="cli", ipv6=True, dns=shutil.which("knotd") is not None)
        lab.up(keep=True)
        print(f"Lab up in {lab.base_dir} (namespaces {', '.join(lab.spaces.values())}).")
        for role in SITES:
            print(f"  {role}: https://{address(role)}/ (ip netns exec {lab.spaces[role]} ...)")
        print(f"  shared IP {SHARED} and {SHARED6}; admin password: {ADMIN_PASSWORD!r}")
        if lab.dns is not None:
            print(f"  DNS swing: {NAME} at {address('outside')} (Knot, key {KEY_NAME})")
        print(f"  a shell as the client: ip netns exec {lab.spaces['client']} bash")
        print("  remove it: python -m tests.lab down")
        return 0
    if command == "down":
        removed = remove_all()
        for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}-*.owner"):
            path.unlink(missing_ok=True)
        print(
            f"removed {len(removed)} lab namespaces"
            + (f": {', '.join(removed)}" if removed else "")
        )
        return 0
    print("usage: python -m tests.lab up|down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
