"""Run a site's processes side by side and stop them together.

`manage.py runsite` uses this to run the web server, the Celery workers and
Celery beat of one site. A child that dies is restarted after a growing delay,
as an init system would, and the event is logged; Ctrl-C or SIGTERM stops every
child (warm shutdown first, then SIGKILL).

Each child writes its log lines (appliance.logconfig) to a pipe; the supervisor
is the only writer of the child's log file and rotates it by size, keeping a
given number of old files (as supervisord does). Several processes appending to
one rotating file would each rotate it on their own and lose lines.

A program run as `python -m <module>` can start as a fork of the supervisor
instead of a new interpreter (`Program.fork`): what the supervisor has imported,
the child need not import again. Forking is safe only in a process with one
thread, so the supervisor has no other: it reads its children's pipes itself,
between its rounds of watching them.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing.util
import os
import runpy
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import setproctitle

logger = logging.getLogger(__name__)

MAX_RESTART_DELAY = 30.0
# A line longer than this (a child that never ends one) is written in pieces.
MAX_LINE_BYTES = 1024 * 1024
# What one round reads of one child: a chatty one cannot hold up the others.
READ_BYTES_PER_ROUND = 1024 * 1024


class LogFile:
    """A log file that rotates by size: `path`, then `path.1` ... `path.<backups>`."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write_line(self, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        self._handler.emit(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))

    def close(self) -> None:
        self._handler.close()


class Output:
    """The read end of a child's output pipe, written to its log line by line."""

    def __init__(self, fd: int, log: LogFile) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self._log = log
        self._partial = b""

    def read(self) -> bool:
        """Write the complete lines the child has said; False once it has closed the pipe."""
        for _ in range(READ_BYTES_PER_ROUND // 65536):
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return True
            if not chunk:
                self.close()
                return False
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                self._log.write_line(line)
            if len(self._partial) >= MAX_LINE_BYTES:
                self._log.write_line(self._partial)
                self._partial = b""
        return True

    def close(self) -> None:
        if self._partial:
            self._log.write_line(self._partial)
            self._partial = b""
        with contextlib.suppress(OSError):
            os.close(self.fd)


class ForkedChild:
    """A child forked from this process; what the supervisor uses of `subprocess.Popen`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost, as Popen says
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.02)
        return self.returncode


@dataclass
class Program:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5
    # Start as a fork of this process, which runs `argv` ([python, "-m", module, *args])
    # as `python -m` would, instead of a new interpreter that imports everything again.
    fork: bool = False
    process: subprocess.Popen[bytes] | ForkedChild | None = None
    restart_delay: float = 1.0
    restart_at: float | None = None
    started_at: float = field(default=0.0)
    _log: LogFile | None = None
    # A child's pipe stays open until every process holding it has gone; a restarted
    # child has a new one.
    outputs: list[Output] = field(default_factory=list)

    def start(self) -> None:
        if self._log is None:
            self._log = LogFile(self.log_path, max_bytes=self.max_bytes, backups=self.backups)
        read_end, write_end = os.pipe()
        try:
            if self.fork and threading.active_count() == 1:
                self.process = self._forked(write_end)
            else:
                if self.fork:
                    logger.warning("%s: this process runs threads; starting it anew", self.name)
                # A new session: Ctrl-C reaches the supervisor only, which then stops
                # each child in order instead of all of them dying at once.
                self.process = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=write_end,
                    stderr=write_end,
                    start_new_session=True,
                    env={**os.environ, **self.env},
                )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.outputs.append(Output(read_end, self._log))
        self.started_at = time.monotonic()
        self.restart_at = None
        logger.info("started %s (pid %s), log in %s", self.name, self.process.pid, self.log_path)

    def _forked(self, write_end: int) -> ForkedChild:
        _python, option, module, *args = self.argv
        if option != "-m":
            raise ValueError(f"{self.name}: only a `python -m` program can be forked")
        # What this process has buffered is its own, not the child's to write again.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        pid = os.fork()
        if pid:
            return ForkedChild(pid)
        code = 1
        try:
            code = self._run_child(module, args, write_end)
        finally:
            # Whatever happened, the child never returns into the supervisor.
            os._exit(code)

    def _run_child(self, module: str, args: list[str], write_end: int) -> int:
        """In the forked child: run the module as `python -m` would; its exit code."""
        try:
            os.setsid()
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            stdin = os.open(os.devnull, os.O_RDONLY)
            os.dup2(stdin, 0)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            for fd in (stdin, write_end, *(output.fd for output in self.outputs)):
                os.close(fd)
            # The hooks libraries register for a fork (Celery's and kombu's connection
            # pools), which multiprocessing and billiard run in the children they fork.
            multiprocessing.util._run_after_forkers()
            os.environ.update(self.env)
            # What `ps` and /proc show: the command this child stands for.
            setproctitle.setproctitle(" ".join(self.argv))
            sys.argv = [module, *args]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as stop:
            code = stop.code
        except BaseException:
            traceback.print_exc()
            code = 1
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        return code or 0

    def pump(self, timeout: float = 0.0) -> bool:
        """Write what the child has said to its log, waiting up to `timeout` for it.

        False once the child and everything it started have closed their output.
        """
        if self.outputs:
            readable, _, _ = select.select([output.fd for output in self.outputs], [], [], timeout)
            self.read_ready(set(readable))
        return bool(self.outputs)

    def read_ready(self, readable: set[int]) -> None:
        """Read the outputs whose descriptors `select` found readable."""
        self.outputs = [
            output for output in self.outputs if output.fd not in readable or output.read()
        ]

    def close_log(self, timeout: float = 5.0) -> None:
        """After the child stopped: write what it still said, then close the file."""
        deadline = time.monotonic() + timeout
        while self.outputs and (left := deadline - time.monotonic()) > 0:
            self.pump(left)
        for output in self.outputs:
            output.close()
        self.outputs = []
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
                self.pump(0.2)
                self._mend()
        finally:
            self.stop()

    def pump(self, timeout: float) -> None:
        """Write every child's output to its log, waiting up to `timeout` for some."""
        fds = [output.fd for program in self.programs for output in program.outputs]
        if not fds:
            time.sleep(timeout)
            return
        readable, _, _ = select.select(fds, [], [], timeout)
        for program in self.programs:
            program.read_ready(set(readable))

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
            # Read their output meanwhile: a child blocked on a full pipe would not stop.
            while program.process.poll() is None and time.monotonic() < deadline:
                self.pump(0.05)
            if program.process.poll() is None:
                logger.warning("%s did not stop in time; killing it", program.name)
                program.signal(signal.SIGKILL)
                while program.process.poll() is None:
                    self.pump(0.05)
            logger.info("stopped %s", program.name)
        deadline = time.monotonic() + 5.0
        while any(program.outputs for program in self.programs) and (time.monotonic() < deadline):
            self.pump(0.05)
        for program in self.programs:
            program.close_log(timeout=0)
