"""Failover time in the namespace lab: this product against keepalived, side by side in one run.

    sudo .venv/bin/python bench/failover_time.py [--trials 5] [--soak-minutes 0]

A client in its own namespace probes the shared IP every 50 ms (a TCP connection
and an HTTP request, tests/lab_client/watch.py). Each trial powers the primary
off (its switch port goes down and its processes die, as when a machine loses
power) and measures the time from the cut until the shared IP answers again,
from the backup. Reported as median and worst, for:

- the product at its tightest supported settings (poll every 1 s, Primary Site
  Instance Timeout 2 s), with the Linux driver and gratuitous ARP;
- keepalived from Debian at its defaults (VRRP advert_int 1 s, MASTER priority
  150, BACKUP priority 100, so the backup's master-down interval is 3 x 1 s +
  skew), run only inside the lab's namespaces, each site namespace also serving
  a small HTTP responder so the client measures the same thing.

With --soak-minutes N, afterwards the primary runs under heavy CPU and disk load
(stress in its namespace: busy loops on every core and a disk writer with
fsync) for N minutes at the product's default monitor settings, and the run
counts failovers (the goal is zero).

Root is needed (namespaces); the machine's other work makes absolute figures
noisy, which is why both tools are measured in the same lab and the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab import (  # noqa: E402
    SHARED,
    SHARED_IP,
    SITES,
    Lab,
    kill_namespace_processes,
    missing_tools,
    run,
)
from tests.sites import wait_until  # noqa: E402

TIGHTEST = {"poll": 1, "timeout": 2}


def measure(lab: Lab, victim: str, *, port: int, tls: bool) -> float:
    """Power `victim` off; seconds until the shared IP answers again (or raise)."""
    watcher = lab.watch(SHARED_IP, port, tls=tls, limit=120)
    try:
        if not watcher.wait_for(True, 15):
            raise RuntimeError("the shared IP does not answer before the trial")
        cut = time.time()
        lab.power_off(victim)
        if not watcher.wait_for(False, 10):
            raise RuntimeError("the shared IP kept answering after the primary died")
        back = watcher.wait_for(True, 60)
        if not back:
            raise RuntimeError("the shared IP did not answer again within 60 s")
        return back["t"] - cut
    finally:
        watcher.stop()


def product_trials(lab: Lab, trials: int) -> list[float]:
    lab.configure_monitor(**TIGHTEST)
    times = []
    for trial in range(trials):
        primary, backup = lab.current()
        time.sleep(3)  # a few healthy polls first
        took = measure(lab, primary, port=443, tls=True)
        times.append(took)
        print(f"  product trial {trial + 1}: {took:.2f} s ({primary} -> {backup})", flush=True)
        lab.power_on(primary)
        if not wait_until(
            lambda b=backup, p=primary: lab.holders() == {b} and lab.stored_role(p)[0] == "backup",
            60,
        ):
            raise RuntimeError(f"{primary} did not come back as backup")
    return times


KEEPALIVED_CONF = """\
vrrp_instance lab {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {priority}
    virtual_ipaddress {{
        {shared}
    }}
}}
"""


def start_keepalived(lab: Lab, site: str, folder: Path, trial: int) -> subprocess.Popen:
    state, priority = ("MASTER", 150) if site == "primary" else ("BACKUP", 100)
    conf = folder / f"keepalived-{site}.conf"
    conf.write_text(KEEPALIVED_CONF.format(state=state, priority=priority, shared=SHARED))
    log = open(folder / f"keepalived-{site}.log", "ab")  # noqa: SIM115 - closed below
    # Pid files of their own per trial: keepalived refuses to start over a file whose
    # process is a not yet reaped zombie ("daemon is already running").
    started = subprocess.Popen(
        ["ip", "netns", "exec", lab.spaces[site], "keepalived", "--dont-fork", "--log-console",
         "--vrrp", "-f", str(conf), "-p", str(folder / f"k-{site}-{trial}.pid"),
         "-r", str(folder / f"k-{site}-{trial}-vrrp.pid")],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    return started


def start_responder(lab: Lab, site: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.spaces[site], sys.executable, "-m", "http.server", "80",
         "--bind", "0.0.0.0", "--directory", str(lab.base_dir)],  # noqa: S104 - in its namespace
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def keepalived_trials(lab: Lab, trials: int) -> list[float]:
    folder = lab.base_dir / "keepalived"
    folder.mkdir(exist_ok=True)
    for site in SITES:  # the product steps aside: no site processes, no address
        kill_namespace_processes(lab.spaces[site])
        run("ip", "-n", lab.spaces[site], "addr", "del", SHARED, "dev", "eth0", check=False)
    times = []
    for trial in range(trials):
        started = []
        for site in SITES:
            started.append(start_responder(lab, site))
            started.append(start_keepalived(lab, site, folder, trial))
        if not wait_until(lambda: lab.holders() == {"primary"}, 30):
            raise RuntimeError(f"keepalived did not settle: {lab.holders()}")
        time.sleep(3)
        took = measure(lab, "primary", port=80, tls=False)
        times.append(took)
        print(f"  keepalived trial {trial + 1}: {took:.2f} s", flush=True)
        kill_namespace_processes(lab.spaces["backup"])
        for process in started:
            process.wait(10)
        run("ip", "-n", lab.spaces["backup"], "addr", "del", SHARED, "dev", "eth0", check=False)
        lab.cut_link("primary", down=False)
    return times


def default_monitor_settings() -> dict[str, int]:
    import tempfile

    import django

    os.environ.setdefault("APPLIANCE_DATA_DIR", tempfile.mkdtemp(prefix="bench-settings-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")
    django.setup()
    from failover.models import BackupSettings

    return {f.name: f.default for f in BackupSettings._meta.fields}


def soak(lab: Lab, minutes: float) -> dict[str, object]:
    """The primary under CPU and disk load at the default settings: count failovers."""
    defaults = default_monitor_settings()
    lab.configure_monitor(
        poll=defaults["poll_interval_seconds"], timeout=defaults["primary_timeout_seconds"]
    )
    primary, backup = lab.current()
    before = lab.events(backup).count("failover")
    load = textwrap.dedent(f"""
        import os, multiprocessing, time
        def spin():
            while True: pass
        def disk():
            path = {str(lab.base_dir / "soak.bin")!r}
            block = os.urandom(1 << 20)
            while True:
                with open(path, "wb") as f:
                    for _ in range(64):
                        f.write(block)
                    f.flush(); os.fsync(f.fileno())
        for _ in range(2 * (os.cpu_count() or 1)):
            multiprocessing.Process(target=spin, daemon=True).start()
        for _ in range(2):
            multiprocessing.Process(target=disk, daemon=True).start()
        time.sleep({minutes * 60})
    """)
    stress = subprocess.Popen(
        ["ip", "netns", "exec", lab.spaces[primary], sys.executable, "-c", load],
        start_new_session=True,
    )
    samples = 0
    deadline = time.monotonic() + minutes * 60
    try:
        while time.monotonic() < deadline:
            if lab.holders() != {primary} or lab.stored_role(backup)[0] != "backup":
                break
            samples += 1
            time.sleep(5)
    finally:
        os.killpg(stress.pid, 9)
        stress.wait()
    failovers = lab.events(backup).count("failover") - before
    return {
        "minutes": minutes,
        "failovers": failovers,
        "primary_kept_address": lab.holders() == {primary},
        "samples": samples,
        "settings": {
            "poll": defaults["poll_interval_seconds"],
            "timeout": defaults["primary_timeout_seconds"],
        },
    }


def summary(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "worst": max(times), "trials": len(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--soak-minutes", type=float, default=0)
    args = parser.parse_args()
    if problems := missing_tools():
        print("the lab needs: " + "; ".join(problems), file=sys.stderr)
        return 2
    if subprocess.run(["which", "keepalived"], capture_output=True).returncode != 0:
        print("keepalived is missing: run tests/setup-system as root", file=sys.stderr)
        return 2
    started = time.time()
    with Lab() as lab:
        print("building the lab and pairing the sites ...", flush=True)
        lab.up()
        print(f"product, tightest settings {TIGHTEST}:", flush=True)
        product = product_trials(lab, args.trials)
        soaked = soak(lab, args.soak_minutes) if args.soak_minutes else None
        print("keepalived, default settings:", flush=True)
        keepalived = keepalived_trials(lab, args.trials)
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "keepalived": subprocess.run(
            ["keepalived", "--version"], capture_output=True, text=True
        ).stderr.splitlines()[0],
        "product": summary(product),
        "keepalived_defaults": summary(keepalived),
        "ratio_median": statistics.median(product) / statistics.median(keepalived),
        "ratio_worst": max(product) / max(keepalived),
        "raw": {"product": product, "keepalived": keepalived},
        "soak": soaked,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
