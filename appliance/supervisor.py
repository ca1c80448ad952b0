"""Run a site's processes side by side and stop them together.

`manage.py runsite` uses this to run the web server, the Celery worker and
Celery beat of one site. A child that dies is restarted after a growing delay,
as an init system would, and the event is logged; Ctrl-C or SIGTERM stops every
child (warm shutdown first, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_RESTART_DELAY = 30.0


@dataclass
class Program:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restart_delay: float = 1.0
    restart_at: float | None = None
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # A new session: Ctrl-C reaches the supervisor only, which then stops
            # each child in order instead of all of them dying at once.
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.restart_at = None
        logger.info("started %s (pid %s), log in %s", self.name, self.process.pid, self.log_path)

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


class Supervisor:
    def __init__(self, programs: list[Program]) -> None:
        self.programs = programs
        self._stopping = False

    def request_stop(self, *_args: object) -> None:
        self._stopping = True

    def run(self, on_started: object = None) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        for program in self.programs:
            program.start()
        if callable(on_started):
            on_started()
        try:
            while not self._stopping:
                self._mend()
                time.sleep(0.2)
        finally:
            self.stop()

    def _mend(self) -> None:
        now = time.monotonic()
        for program in self.programs:
            if program.process is None:
                continue
            code = program.process.poll()
            if code is None:
                if now - program.started_at > 60:
                    program.restart_delay = 1.0
                continue
            if program.restart_at is None:
                program.restart_at = now + program.restart_delay
                logger.warning(
                    "%s exited with code %s; restarting in %.0f s",
                    program.name,
                    code,
                    program.restart_delay,
                )
                program.restart_delay = min(program.restart_delay * 2, MAX_RESTART_DELAY)
            elif now >= program.restart_at:
                program.start()

    def stop(self, timeout: float = 15.0) -> None:
        for program in reversed(self.programs):
            program.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for program in reversed(self.programs):
            if program.process is None:
                continue
            try:
                program.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in time; killing it", program.name)
                program.signal(signal.SIGKILL)
                program.process.wait()
            logger.info("stopped %s", program.name)
