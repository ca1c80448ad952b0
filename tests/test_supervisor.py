"""runsite's supervisor, in a process of its own: it forks only where no other thread runs.

The multi-site tests run every site's Celery programs as forks of runsite; these
tests pin what a forked program gets: its arguments, environment, session, outputs,
title and exit code, and the fresh interpreter it gets instead where threads run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SUPERVISE = """
import sys, threading
from pathlib import Path
from appliance.supervisor import Program

if sys.argv[3] == "with-a-thread":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
probe = Program(
    "probe",
    [sys.executable, "-m", "tests.supervised_probe", sys.argv[2]],
    Path(sys.argv[1]),
    env={"PROBE": "given"},
    fork=True,
)
probe.start()
code = probe.process.wait(60)
probe.close_log()
print(type(probe.process).__name__, code)
"""


def supervise(log: Path, mode: str, exit_with: str = "3") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SUPERVISE, str(log), exit_with, mode],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


def test_a_forked_program_runs_its_module_with_its_arguments_environment_and_session(tmp_path):
    log = tmp_path / "probe.log"
    result = supervise(log, "alone")
    assert result.stdout.split() == ["ForkedChild", "3"]
    lines = log.read_text().splitlines()
    assert "argv=['3'] own-session=True" in lines
    # Both outputs reach the log; `ps` shows the command it stands for, not runsite's.
    said = next(line for line in lines if line.startswith("PROBE="))
    assert said.startswith(f"PROBE=given ps={sys.executable} -m tests.supervised_probe 3")


def test_where_threads_run_the_program_starts_in_a_new_interpreter_instead(tmp_path):
    log = tmp_path / "probe.log"
    result = supervise(log, "with-a-thread")
    assert result.stdout.split() == ["Popen", "3"]
    assert "probe: this process runs threads; starting it anew" in result.stderr
    assert "argv=['3'] own-session=True" in log.read_text().splitlines()


def test_a_forked_program_that_raises_exits_1_with_its_traceback_in_its_log(tmp_path):
    log = tmp_path / "probe.log"
    result = supervise(log, "alone", exit_with="raise")
    # The child's exception stays in the child: the supervisor carries on.
    assert result.stdout.split() == ["ForkedChild", "1"]
    assert "RuntimeError: the probe failed on purpose" in log.read_text().splitlines()
