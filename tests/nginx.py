"""Debian's nginx as a real reverse proxy in front of a test site.

It runs as an unprivileged process (as `nobody` when the tests run as root) with
a configuration, logs and temporary folders of its own in a temporary folder,
on a loopback port, and hands each request on with the client's address
appended to X-Forwarded-For, as a production proxy is set up to.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.sites import free_port, wait_until

NGINX = Path("/usr/sbin/nginx")

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def available() -> bool:
    return NGINX.exists()


class Nginx:
    def __init__(self, upstream: str) -> None:
        # Its own folder straight under the temporary folder: pytest's are the test
        # user's alone, and nginx may run as somebody else.
        self.folder = Path(tempfile.mkdtemp(prefix="nginx-"))
        self.port = free_port()
        self.upstream = upstream
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        config = self.folder / "nginx.conf"
        config.write_text(CONFIG.format(folder=self.folder, port=self.port, upstream=self.upstream))
        argv = [str(NGINX), "-p", str(self.folder), "-c", str(config), "-e", "stderr"]
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            shutil.chown(self.folder, nobody.pw_uid, nobody.pw_gid)
            shutil.chown(config, nobody.pw_uid, nobody.pw_gid)
            argv = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                    "--clear-groups", *argv]  # fmt: skip
        log = open(self.folder / "stderr.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        if not wait_until(lambda: self._listening() or self.process.poll() is not None, 30):
            raise RuntimeError(f"nginx did not listen on {self.port}:\n{self.log()}")
        if self.process.poll() is not None:
            raise RuntimeError(f"nginx exited:\n{self.log()}")
        return self

    def _listening(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(1)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def log(self) -> str:
        return "\n".join(
            (self.folder / name).read_text(errors="replace")
            for name in ("stderr.log", "error.log")
            if (self.folder / name).exists()
        )[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)
