"""How soon clients follow a takeover, for each way of moving the service, in one run.

    sudo .venv/bin/python bench/takeover_methods.py [--trials 5]

The namespace lab of tests/lab.py with every method on: the sites share
10.231.0.100/24 and fd00:231::100/64, swing support.failover.test at a Knot
server in the outside namespace (TTL 30 s), at the product's tightest monitor
settings (poll every 1 s, Primary Site Instance Timeout 2 s). Three clients in
the client namespace watch at once (tests/lab_client/):

- IPv4: an HTTPS request to the IPv4 shared address every 20 ms (a connection
  not accepted within 100 ms counts as failed: a live host's kernel accepts at
  once, so the time resolution is about 120 ms);
- IPv6: the same to the IPv6 shared address;
- DNS: the name's A and AAAA records asked of the authoritative server every
  20 ms (what a resolver whose cache has expired would get).

Each trial powers the primary off and measures, for each method, the time
from the takeover decision (the backup's "Automatic failover" event, which
the monitor records the moment it decides) until the client follows: the
shared address answers again, or the server answers with the new primary's
addresses. The client's neighbour cache is left at the kernel's defaults, so
without an announcement it would keep the old MAC for tens of seconds. The
time from the power cut to the decision (the monitor's timeout) is printed
beside it; it is the same for every method.

Root is needed (namespaces), and knotd (tests/setup-system installs it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab import (  # noqa: E402
    SHARED6_IP,
    SHARED_IP,
    Lab,
    Watcher,
    address,
    address6,
    missing_tools,
)
from tests.sites import moment, wait_until  # noqa: E402

TIGHTEST = {"poll": 1, "timeout": 2}
# A request every 20 ms; a live host accepts the connection at once, so one that is not
# accepted within 100 ms has gone to the old holder; the answer may take up to 2 s.
CLIENT = {"limit": 120, "interval": 0.02, "timeout": 2.0, "connect_timeout": 0.1}
METHODS = ("IPv4 shared IP", "IPv6 shared IP", "DNS swing")


def decision_time(lab: Lab, site: str, after: float) -> float:
    """When `site` decided to take over (its last "failover" event after `after`)."""

    def found() -> float | None:
        rows = lab.sites[site].rows(
            "SELECT at FROM failover_failoverevent WHERE kind = 'failover' ORDER BY id DESC LIMIT 1"
        )
        at = moment(rows[0][0]).timestamp() if rows else None
        return at if at and at > after else None

    at = wait_until(found, 60)
    if not at:
        raise RuntimeError(f"{site} recorded no takeover")
    return at


def trial(lab: Lab) -> dict[str, float]:
    primary, backup = lab.current()
    watchers: dict[str, Watcher] = {
        "IPv4 shared IP": lab.watch(SHARED_IP, **CLIENT),
        "IPv6 shared IP": lab.watch(SHARED6_IP, **CLIENT),
        "DNS swing": lab.watch_dns(limit=120),
    }
    new = {"A": [address(backup)], "AAAA": [address6(backup)]}
    try:
        for method in METHODS[:2]:
            if not watchers[method].wait_for(True, 30):
                raise RuntimeError(f"the {method} does not answer before the trial")
        time.sleep(3)  # a few healthy polls first
        cut = time.time()
        lab.power_off(primary)
        followed = {}
        for method in METHODS[:2]:
            # Any request begun after the cut that is answered reached the new holder (the
            # old one is dead). A request that failed and one that worked before the cut,
            # on a loaded machine, say nothing about the takeover.
            back = watchers[method].wait_until(
                lambda change: change["up"] and change["t"] > cut, 90
            )
            if not back:
                raise RuntimeError(f"the {method} did not answer again within 90 s")
            if not any(not change["up"] for change in watchers[method].changes):
                raise RuntimeError(f"the {method} never stopped answering: {method} not moved")
            followed[method] = back["t"]
        named = watchers["DNS swing"].wait_until(
            lambda change: {"A": change["A"], "AAAA": change["AAAA"]} == new and change["t"] > cut,
            90,
        )
        if not named:
            raise RuntimeError(
                f"the name did not lead to {new} within 90 s: {watchers['DNS swing'].changes}"
            )
        followed["DNS swing"] = named["t"]
    finally:
        for watcher in watchers.values():
            watcher.stop()
    decided = decision_time(lab, backup, cut)
    result = {method: at - decided for method, at in followed.items()}
    result["cut to decision"] = decided - cut
    print(
        f"  {primary} -> {backup}: decided {result['cut to decision']:.2f} s after the cut; "
        + ", ".join(f"{method} {result[method]:.3f} s" for method in METHODS),
        flush=True,
    )
    lab.power_on(primary)
    if not wait_until(
        lambda: (
            lab.holders() == lab.holders6() == {backup} and lab.stored_role(primary)[0] == "backup"
        ),
        120,
    ):
        raise RuntimeError(f"{primary} did not come back as backup")
    return result


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "worst": max(values), "best": min(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    if problems := missing_tools():
        print("the lab needs: " + "; ".join(problems), file=sys.stderr)
        return 2
    if shutil.which("knotd") is None:
        print("knotd is missing: run tests/setup-system as root", file=sys.stderr)
        return 2
    started = time.time()
    results = []
    with Lab(ipv6=True, dns=True) as lab:
        print("building the lab and pairing the sites ...", flush=True)
        lab.up()
        lab.configure_monitor(**TIGHTEST)
        print(f"{args.trials} takeovers at the tightest settings {TIGHTEST}:", flush=True)
        for _ in range(args.trials):
            results.append(trial(lab))
    load = os.getloadavg()
    report = {
        "when": dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load[0]:.1f} (1 min) at the end",
        "from the decision until the client follows (s)": {
            method: summary([r[method] for r in results]) for method in METHODS
        },
        "from the power cut to the decision (s)": summary([r["cut to decision"] for r in results]),
        "raw": results,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
