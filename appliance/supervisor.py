"""Run a site's processes side by side and stop them together.

`manage.py runsite` uses this to run the web server, the Celery worker and
Celery beat of one site. A child that dies is restarted after a growing delay,
as an init system would, and the event is logged; Ctrl-C or SIGTERM stops every
child (warm shutdown first, then SIGKILL).

Each child writes its log lines (appliance.logconfig) to a pipe; the supervisor
is the only writer of the child's log file and rotates it by size, keeping a
given number of old files (as supervisord does). Several processes appending to
one rotating file would each rotate it on their own and lose lines.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_RESTART_DELAY = 30.0


class LogFile:
    """A log file that rotates by size: `path`, then `path.1` ... `path.<backups>`."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write_line(self, line: str) -> None:
        self._handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def pump(self, stream: object) -> None:
        """Copy `stream` (a child's output) line by line until the child closes it."""
        with contextlib.closing(stream):
            for raw in iter(stream.readline, b""):
                self.write_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    def close(self) -> None:
        self._handler.close()


@dataclass
class Program:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5
    process: subprocess.Popen[bytes] | None = None
    restart_delay: float = 1.0
    restart_at: float | None = None
    started_at: float = field(default=0.0)
    _log: LogFile | None = None
    _pumps: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        if self._log is None:
            self._log = LogFile(self.log_path, max_bytes=self.max_bytes, backups=self.backups)
        # A new session: Ctrl-C reaches the supervisor only, which then stops
        # each child in order instead of all of them dying at once.
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env},
        )
        pump = threading.Thread(
            target=self._log.pump, args=(self.process.stdout,), name=f"log-{self.name}"
        )
        pump.daemon = True
        pump.start()
        self._pumps = [thread for thread in self._pumps if thread.is_alive()] + [pump]
        self.started_at = time.monotonic()
        self.restart_at = None
        logger.info("started %s (pid %s), log in %s", self.name, self.process.pid, self.log_path)

    def close_log(self, timeout: float = 5.0) -> None:
        """After the child stopped: write what it still said, then close the file."""
        for pump in self._pumps:
            pump.join(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

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
            program.close_log()
