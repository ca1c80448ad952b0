"""The lab leaves nothing behind: no namespace, interface or process, also after an interrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import PREFIX, Lab, lab_namespaces, owner_file, remove_stale, run
from tests.lab_fixtures import require_lab
from tests.sites import ROOT

pytestmark = [pytest.mark.processes, pytest.mark.lab]


def host_links() -> set[str]:
    return {line.split(":")[1].strip() for line in run("ip", "-o", "link").stdout.splitlines()}


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


def processes_using(folder: Path) -> list[int]:
    """Processes whose environment or command line names `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            seen = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in seen and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_the_lab_leaves_no_namespace_interface_or_process_behind(tmp_path):
    require_lab()
    links = host_links()
    lab = Lab(tmp_path)
    try:
        lab.up(pair=False)
        pids = [
            int(pid)
            for name in lab.spaces.values()
            for pid in run("ip", "netns", "pids", name).stdout.split()
        ]
        assert len(pids) >= 10, "the sites' processes run inside the lab's namespaces"
        assert processes_using(tmp_path)
    finally:
        lab.down()
    assert not [name for name in lab_namespaces() if f"-{lab.tag}-" in name]
    assert host_links() == links, "an interface was left in the host's namespace"
    assert not [pid for pid in pids if alive(pid)]
    assert processes_using(tmp_path) == []
    assert not owner_file(lab.tag).exists()


def test_the_leftovers_of_an_interrupted_run_are_removed_by_the_next_lab(tmp_path):
    require_lab()
    script = (
        f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
        "from pathlib import Path\nfrom tests.lab import Lab\n"
        f"lab = Lab(Path({str(tmp_path)!r}))\nlab.build_network()\n"
        "lab.in_ns('primary', 'sh', '-c', 'sleep 300 >/dev/null 2>&1 &')\n"
        "print(lab.tag, flush=True)\ntime.sleep(300)\n"
    )
    interrupted = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    tag = interrupted.stdout.readline().strip()
    assert tag, "the interrupted run did not build its lab"
    os.kill(interrupted.pid, signal.SIGKILL)  # no teardown at all
    interrupted.wait()
    left = [name for name in lab_namespaces() if name.startswith(f"{PREFIX}-{tag}-")]
    assert len(left) == 5
    sleeper = [int(p) for p in run("ip", "netns", "pids", f"{PREFIX}-{tag}-primary").stdout.split()]
    assert sleeper
    remove_stale()  # what every new lab does first
    assert not [name for name in lab_namespaces() if name.startswith(f"{PREFIX}-{tag}-")]
    assert not [pid for pid in sleeper if alive(pid)]
    assert not owner_file(tag).exists()
