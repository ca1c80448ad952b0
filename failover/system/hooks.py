"""Takeover hooks: the machine administrator's programs, run as subprocesses.

The hooks are the executable files of one directory (FAILOVER_HOOKS_DIR), run
in name order, as run-parts does: only names of letters, digits, underscores
and hyphens count, so README.md, backups and editor files are left alone. A
hook that others could have changed is refused: neither it nor its directory
may be writable by group or others, and both belong to root or to the user
the site runs as. Each hook runs in a session of its own with a clean
environment (the caller's variables only, never the site's secrets), no
input, its output and errors captured together, and a timeout after which its
whole process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HOOK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
OUTPUT_LIMIT = 4000


@dataclass(frozen=True)
class HookRun:
    """How one hook ran: its exit status (None: it did not finish), output and duration."""

    name: str
    exit_status: int | None
    output: str
    seconds: float
    timed_out: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class Found:
    """The hooks of a directory that may run, in order, and what is wrong with the others."""

    hooks: list[Path]
    skipped: list[str]  # present but not executable: left alone, as run-parts does
    refused: list[str]  # must not run: a sentence each


def _unsafe(path: Path, info: os.stat_result) -> str:
    """Why a file or folder others could change must not be trusted, or ""."""
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by its group or by others (chmod go-w {path})"
    if info.st_uid not in (0, os.geteuid()):
        return f"{path} belongs to user {info.st_uid}, not to root or to the site's user"
    return ""


def find(directory: Path) -> Found:
    """The hooks in `directory`: which run, which are skipped, which are refused and why."""
    try:
        info = directory.stat()
    except OSError as error:
        return Found([], [], [f"{directory} cannot be read: {error.strerror or error}"])
    if not stat.S_ISDIR(info.st_mode):
        return Found([], [], [f"{directory} is not a directory"])
    if problem := _unsafe(directory, info):
        return Found([], [], [f"no hook runs: {problem}"])
    hooks, skipped, refused = [], [], []
    for path in sorted(directory.iterdir()):
        if not HOOK_NAME.match(path.name):
            continue
        try:
            info = path.stat()
        except OSError as error:
            refused.append(f"{path} cannot be read: {error.strerror or error}")
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        if not os.access(path, os.X_OK):
            skipped.append(path.name)
        elif problem := _unsafe(path, info):
            refused.append(problem)
        else:
            hooks.append(path)
    return Found(hooks, skipped, refused)


def run(path: Path, args: list[str], env: dict[str, str], timeout: float) -> HookRun:
    """Run one hook with `args` and exactly `env`; kill its process group at `timeout`."""
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [str(path), *args],
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return HookRun(
            path.name, None, "", time.monotonic() - started, error=error.strerror or str(error)
        )
    timed_out = False
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Not done (or a process it started still holds its output): end them all.
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            output, _ = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a process that left the group holds the pipe
            process.stdout.close()
            process.wait()
            output = b""
    text = output.decode(errors="replace")
    if len(text) > OUTPUT_LIMIT:
        text = "…" + text[-OUTPUT_LIMIT:]
    return HookRun(
        path.name,
        None if timed_out else process.returncode,
        text.strip(),
        time.monotonic() - started,
        timed_out=timed_out,
    )
