"""`make run`: two local sites, "site-a" on :8001 and "site-b" on :8002, unpaired.

The names are the sites', not their roles: pairing makes one primary, and a role
change swaps them, so a name like "primary" would soon read wrong beside the badge.

Each site has its own data folder (SQLite file, embedded Redis, logs), its own
worker and beat. Both get the same administrator account, whose password is
generated once and kept in var/admin-password. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
SITES = {"site-a": 8001, "site-b": 8002}
USERNAME = "admin"


def admin_password() -> str:
    path = VAR / "admin-password"
    if not path.exists():
        VAR.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(12))
    return path.read_text().strip()


def site_env(name: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    for variable in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        env.pop(variable, None)  # the demo pair always runs on its embedded defaults
    env.update(
        APPLIANCE_DATA_DIR=str(VAR / name),
        APPLIANCE_NAME=name,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PEER_ALLOW_PLAIN_HTTP="1",
    )
    return env


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        input=stdin,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def wait_for_login(port: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def main() -> int:
    password = admin_password()
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for name, port in SITES.items():
            env = site_env(name, port)
            print(f"Preparing {name} in var/{name} ...", flush=True)
            manage(env, "migrate", "--noinput")
            manage(env, "ensureadmin", USERNAME, stdin=password + "\n")
            log = open(VAR / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
            children.append(
                subprocess.Popen(
                    [sys.executable, str(ROOT / "manage.py"), "runsite",
                     "--bind", f"127.0.0.1:{port}"],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip
        for name, port in SITES.items():
            if not wait_for_login(port):
                print(f"{name} did not answer on port {port}; see var/{name}/logs/.", flush=True)
                return 1
        print()
        for name, port in SITES.items():
            print(f"  {name:8} http://127.0.0.1:{port}/login")
        print(f"\n  username: {USERNAME}\n  password: {password}\n")
        print("Logs are in var/<site>/logs/. Press Ctrl-C to stop both sites.", flush=True)
        while not stopping:
            if any(child.poll() is not None for child in children):
                print("A site stopped unexpectedly; see var/<site>.log. Stopping.", flush=True)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
