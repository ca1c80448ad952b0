"""Real sites for tests: `manage.py runsite` processes, each with its own data and broker.

On the embedded defaults each site gets its own SQLite file and embedded Redis.
When the suite runs with DATABASE_URL (PostgreSQL) and REDIS_URL set, as in CI's
second pass, each site gets its own database on that server and its own Redis
database number, so the production path is exercised too.

Tests act on a site through its real doors (the CLI, its web pages, its peer)
and watch it by reading its database, its Redis and its files directly
(`status`, `sync_run`, `event_kinds`, ...). Watching costs a query, not a
Python start-up with Django (about a second of CPU each), so a test that waits
for an event sees it within a fraction of a second however busy the machine
is, and does not slow the sites it waits for.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import http.cookiejar
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.certs import Certificate, make_server_certificate

ROOT = Path(__file__).resolve().parent.parent
_redis_numbers = itertools.count()
# Redis has databases 0-15; 0 is the in-process tests'. Each pytest-xdist
# worker gets its own three, so sites of parallel tests never share a broker.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_SLOTS_PER_WORKER = 3


def _redis_database() -> int:
    return (
        1 + (_WORKER * REDIS_SLOTS_PER_WORKER + next(_redis_numbers) % REDIS_SLOTS_PER_WORKER) % 15
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll `predicate` until it returns something truthy; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


_template: Path | None = None


def _migrated_template(base_env: dict[str, str]) -> Path:
    """A migrated SQLite file, made once per test process and copied into each site.

    Migrating takes seconds per site; copying the file takes milliseconds. The
    site's own `runsite` still runs migrate, which then has nothing to do.
    """
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="appliance-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        env = {**base_env, "APPLIANCE_DATA_DIR": str(folder)}
        env.pop("DATABASE_URL", None)
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
            env=env, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        _template = folder / "db.sqlite3"
    return _template


_postgres_template: str | None = None


def _migrated_postgres_template(admin_url: str, database_url: str, base_env: dict[str, str]) -> str:
    """The same for PostgreSQL: a migrated database, made once per test process, that
    each site's database is created from (CREATE DATABASE ... TEMPLATE)."""
    import psycopg

    global _postgres_template
    if _postgres_template is None:
        name = f"site_template_{os.getpid()}"
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
            env={**base_env, "DATABASE_URL": url}, check=True, capture_output=True, timeout=300,
        )  # fmt: skip

        def drop() -> None:
            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        atexit.register(drop)
        _postgres_template = name
    return _postgres_template


class Site:
    def __init__(
        self,
        name: str,
        base_dir: Path,
        *,
        ca: Certificate | None = None,
        netns: str | None = None,
        host: str = "127.0.0.1",
        extra_hosts: tuple[str, ...] = (),
        web_workers: int = 1,
        release: Path | None = None,
        **env: str,
    ) -> None:
        """A site on loopback, or with `netns` one inside that network namespace.

        Inside a namespace the site listens on port 443 of all its addresses and
        every command that may talk to it or to its peer runs in the namespace.
        With `release` (an unpacked wheel, tests/releases.py) the site runs that
        release instead of this checkout, until `upgrade`.
        """
        self.name = name
        self.release = release
        self.web_workers = web_workers
        self.ca = ca
        self.netns = netns
        self.host = host
        self.data_dir = base_dir / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = 443 if netns else free_port()
        hosts = (host, *extra_hosts, "127.0.0.1", "localhost")
        hosts = tuple(dict.fromkeys(hosts))
        self.process: subprocess.Popen[bytes] | None = None
        self._database: str | None = None
        self._database_url: str | None = None
        self._reader: Any = None
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY"}
        }
        self.env.update(
            APPLIANCE_DATA_DIR=str(self.data_dir),
            APPLIANCE_NAME=name,
            ALLOWED_HOSTS=",".join(f"[{h}]" if ":" in h else h for h in hosts),
            HEARTBEAT_SECONDS="5",
            DJANGO_SETTINGS_MODULE="appliance.settings",
        )
        if ca is not None:
            certificate = make_server_certificate(self.data_dir, ca, hosts)
            self.certificate_fingerprint = certificate.fingerprint
            self.env.update(
                TLS_CERTFILE=str(certificate.cert_path), TLS_KEYFILE=str(certificate.key_path)
            )
        else:
            self.env["PEER_ALLOW_PLAIN_HTTP"] = "1"
        if not netns:
            # A site in a namespace cannot reach the host's loopback services: it
            # always runs its own embedded Redis and SQLite there.
            self._use_external_services()
        self.env.update(env)
        if release is not None:
            # Its own code first; its dependencies are the suite's. Its runsite migrates.
            self.env["PYTHONPATH"] = str(release)
        elif "DATABASE_URL" not in self.env:
            shutil.copyfile(_migrated_template(self.env), self.data_dir / "db.sqlite3")

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://{self.host}:{self.port}"

    def _argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    @property
    def _command(self) -> list[str]:
        """How to run a management command: this checkout's manage.py, or the release's
        own manage.py or `python -m appliance` (run from the site's folder, so that this
        checkout, the suite's working directory, does not shadow it)."""
        if self.release is None:
            return [sys.executable, str(ROOT / "manage.py")]
        if (self.release / "manage.py").exists():  # a release before `python -m appliance`
            return [sys.executable, str(self.release / "manage.py")]
        return [sys.executable, "-m", "appliance"]

    @property
    def _cwd(self) -> Path | None:
        return self.data_dir if self.release is not None else None

    def upgrade(self, timeout: float = 180.0) -> Site:
        """Stop the release this site runs and start this checkout's code on its data."""
        self.stop()
        self.release = None
        self.env.pop("PYTHONPATH", None)
        return self.start(timeout)

    def _use_external_services(self) -> None:
        database_url = os.environ.get("DATABASE_URL", "")
        if database_url.startswith(("postgres://", "postgresql://")):
            import psycopg

            self._database = f"site_{self.name}_{os.getpid()}_{self.port}"
            parts = urlsplit(database_url)
            admin_url = urlunsplit(parts._replace(path="/postgres"))
            template = _migrated_postgres_template(admin_url, database_url, self.env)
            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self._database}"')
                connection.execute(f'CREATE DATABASE "{self._database}" TEMPLATE "{template}"')
            self.env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{self._database}"))
            self._database_url = self.env["DATABASE_URL"]
            self._admin_url = admin_url
        redis_url = os.environ.get("REDIS_URL", "")
        if redis_url.startswith("redis://"):
            import redis

            parts = urlsplit(redis_url)
            url = urlunsplit(parts._replace(path=f"/{_redis_database()}"))
            redis.Redis.from_url(url).flushdb()
            self.env["REDIS_URL"] = url

    def manage(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run a management command of the site. `timeout` bounds a hung command; set-up
        whose work grows with its size passes a budget that grows with it."""
        return subprocess.run(
            self._argv([*self._command, *args]),
            env=self.env,
            cwd=self._cwd,
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def prepare(
        self,
        *,
        key: str | None = None,
        admin_password: str | None = None,
        shared_ip: str | None = None,
        python: str = "",
    ) -> None:
        """A new site's set-up through its CLI, in one process rather than one per step
        (each costs a Django start-up): `failover set-key` with `key`, `ensureadmin admin`
        with `admin_password`, `shared_ip` saved as an enabled shared IP on `lo`, then the
        code `python` as `manage.py shell` would run it."""
        code, lines = ["from django.core.management import call_command"], []
        if key is not None:
            code.append("call_command('failover', 'set-key')")
            lines.append(key)
        if admin_password is not None:
            code.append("call_command('ensureadmin', 'admin')")
            lines.append(admin_password)
        if shared_ip is not None:
            code.append("from failover.models import SharedIP")
            code.append(f"SharedIP(enabled=True, address={shared_ip!r}, interface='lo').save()")
        if python:
            code.append(python)
        self.manage(
            "shell",
            "--no-imports",
            "-c",
            "\n".join(code),
            stdin="".join(f"{line}\n" for line in lines),
        )

    def generate_reports(self, count: int, *extra: str) -> None:
        """`generate_reports`, with a time budget proportional to the count (about 300 per
        second on a loaded two-core machine, and a minute to start)."""
        self.manage("generate_reports", str(count), *extra, timeout=60 + count / 300)

    def cli_status(self) -> dict[str, Any]:
        """`manage.py failover status --json`: what the CLI says (a Python start-up)."""
        return json.loads(self.manage("failover", "status", "--json").stdout)

    # Watching the site: its database, Redis and files, read directly ----------------------

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query against the site's database (`%s` placeholders)."""
        if self._database_url:
            import psycopg

            if self._reader is None:
                self._reader = psycopg.connect(self._database_url, autocommit=True)
            return self._reader.execute(sql, params).fetchall()
        import sqlite3

        path = self.data_dir / "db.sqlite3"
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        ) as database:
            return database.execute(sql.replace("%s", "?"), params).fetchall()

    def status(self) -> dict[str, Any]:
        """Role, epoch, peer, processes and last sync, in the shape of `failover status
        --json`, read from the site's database."""
        found = self.rows(
            "SELECT role, epoch, peer_name, peer_host, peer_port, peer_role, peer_epoch, "
            "peer_reachable, peer_checked_at, peer_error FROM failover_failoverstate WHERE id = 1"
        )
        role, epoch, name, host, port, peer_role, peer_epoch, reachable, checked, error = (
            found[0] if found else ("none", 0, "", "", None, "", None, None, None, "")
        )
        key = self.rows("SELECT fingerprint FROM security_presharedkey WHERE id = 1")
        beats = self.rows("SELECT component, last_seen FROM appliance_heartbeat")
        period = int(self.env.get("HEARTBEAT_SECONDS", "10"))
        now = dt.datetime.now(dt.UTC)
        processes: dict[str, dict[str, Any]] = {
            component: {"alive": False, "last_seen": None}
            for component in ("worker", "beat", "network")
        }
        for component, seen in beats:
            last_seen = moment(seen)
            alive = (now - last_seen).total_seconds() <= 3 * period
            processes[component] = {"alive": alive, "last_seen": last_seen.isoformat()}
        return {
            "site": self.name,
            "role": role,
            "epoch": epoch,
            "key_fingerprint": key[0][0] if key else None,
            "peer": {
                "name": name,
                "address": f"{host}:{port}" if host else "",
                "role": peer_role,
                "epoch": peer_epoch,
                "reachable": None if reachable is None else bool(reachable),
                "last_check": _iso(checked),
                "error": error,
            }
            if role != "none"
            else None,
            "processes": processes,
            "last_sync": self.latest_run(),
        }

    def role(self) -> str:
        return self.status()["role"]

    SYNC_RUN_COLUMNS = (
        "id", "status", "trigger", "full", "created_at", "started_at", "finished_at",
        "records", "bytes", "files", "attempts", "error", "retry_at",
    )  # fmt: skip

    def sync_run(self, run_id: int) -> dict[str, Any] | None:
        """A sync run as `SyncRun.as_dict()` shows it (with its retry time), or None."""
        found = self.rows(
            f"SELECT {self._run_columns()} FROM failover_syncrun WHERE id = %s",
            (run_id,),
        )
        return self._run(found[0]) if found else None

    def latest_run(self) -> dict[str, Any] | None:
        found = self.rows(
            f"SELECT {self._run_columns()} FROM failover_syncrun ORDER BY id DESC LIMIT 1"
        )
        return self._run(found[0]) if found else None

    def _run_columns(self) -> str:
        # Quoted: FULL is a reserved word in PostgreSQL (and a quoted name in SQLite too).
        return ", ".join(f'"{column}"' for column in self.SYNC_RUN_COLUMNS)

    def _run(self, row: tuple[Any, ...]) -> dict[str, Any]:
        run = dict(zip(self.SYNC_RUN_COLUMNS, row, strict=True))
        run["full"] = bool(run["full"])
        for moment in ("created_at", "started_at", "finished_at", "retry_at"):
            run[moment] = _iso(run[moment])
        return run

    def event_kinds(self) -> list[str]:
        """The kinds of the status history's events, oldest first."""
        return [
            kind for (kind,) in self.rows("SELECT kind FROM failover_failoverevent ORDER BY id")
        ]

    def count(self, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
        return self.rows(f"SELECT COUNT(*) FROM {table} {where}", params)[0][0]

    def redis(self) -> Any:
        """A client of the site's own Redis (embedded, or its database of the server)."""
        import redis

        url = self.env.get("REDIS_URL") or f"unix://{self.data_dir / 'redis.sock'}"
        return redis.Redis.from_url(url)

    def recorded_shared_ips(self) -> set[str]:
        """What the recording driver holds ("198.51.100.50/24 on lo", ...)."""
        try:
            return set(json.loads((self.data_dir / "shared-ip.json").read_text()))
        except (FileNotFoundError, ValueError):
            return set()

    def get(self, path: str) -> int:
        if self.netns:
            return self._get_in_namespace(path)
        try:
            context = ssl.create_default_context(cafile=self.ca.cert_path) if self.ca else None
            with urllib.request.urlopen(self.url + path, timeout=5, context=context) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    def _get_in_namespace(self, path: str) -> int:
        argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
        if self.ca:
            argv += ["--cacert", str(self.ca.cert_path)]
        try:
            done = subprocess.run(
                self._argv([*argv, self.url + path]), capture_output=True, text=True, timeout=10
            )
        except subprocess.TimeoutExpired:
            return 0
        return int(done.stdout or 0)

    def shell(self, code: str) -> str:
        """Run Python in the site's Django (manage.py shell -c); returns what it printed."""
        return self.manage("shell", "--no-imports", "-c", code).stdout

    def dump(self, *labels: str) -> list[dict[str, Any]]:
        """The site's rows of the models `labels` ("auth.user"), in the shape of `dumpdata
        --natural-foreign`, sorted for comparison; read from its database in this process.

        Each value goes through its model field's `to_python`, so that two sites on
        the same database engine compare equal when they hold the same data. Many-to-many
        relations are lists of the related rows' natural keys, sorted.
        """
        from django.apps import apps

        found = []
        for label in labels:
            model = apps.get_model(label)
            fields = model._meta.concrete_fields
            columns = ", ".join(f'"{field.column}"' for field in fields)
            related = {field.name: self._natural_keys(field) for field in model._meta.many_to_many}
            for row in self.rows(f'SELECT {columns} FROM "{model._meta.db_table}"'):
                values = {
                    field.attname: field.to_python(value)
                    for field, value in zip(fields, row, strict=True)
                }
                pk = values.pop(model._meta.pk.attname)
                for name, keys in related.items():
                    values[name] = sorted(keys.get(pk, []))
                found.append({"model": label, "pk": pk, "fields": values})
        return sorted(found, key=lambda row: (row["model"], str(row["pk"])))

    # How `dump` names a related row: the natural key Django gives the model.
    NATURAL_KEYS = {
        "auth.group": "SELECT id, name FROM auth_group",
        "auth.permission": (
            "SELECT p.id, p.codename, t.app_label, t.model FROM auth_permission p "
            "JOIN django_content_type t ON t.id = p.content_type_id"
        ),
    }

    def _natural_keys(self, field: Any) -> dict[Any, list[list[Any]]]:
        """For a many-to-many field: each row's related natural keys, by the row's pk."""
        target = field.related_model._meta.label_lower
        if target not in self.NATURAL_KEYS:
            raise ValueError(f"no natural key known for {target}; add it to Site.NATURAL_KEYS")
        names = {row[0]: list(row[1:]) for row in self.rows(self.NATURAL_KEYS[target])}
        through = field.remote_field.through._meta.db_table
        pairs = self.rows(
            f'SELECT "{field.m2m_column_name()}", "{field.m2m_reverse_name()}" FROM "{through}"'
        )
        keys: dict[Any, list[list[Any]]] = {}
        for owner, other in pairs:
            keys.setdefault(owner, []).append(names[other])
        return keys

    def login(self, username: str, password: str) -> bool:
        """Log in through /login as a browser would (CSRF cookie and token); True on success."""
        return self.session(username, password) is not None

    def session(self, username: str, password: str) -> urllib.request.OpenerDirector | None:
        """A logged-in browser-like client (its cookies kept), or None when the login fails."""
        context = ssl.create_default_context(cafile=self.ca.cert_path) if self.ca else None
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(jar), urllib.request.HTTPSHandler(context=context)
        )
        with opener.open(self.url + "/login", timeout=10) as response:
            page = response.read().decode()
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": csrf_token(page)}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - always this site's https/http URL
            self.url + "/login", data=form, headers={"Referer": self.url + "/login"}
        )
        with opener.open(request, timeout=10) as response:
            return opener if response.geturl().endswith("/status/") else None

    def post_form(
        self, session: urllib.request.OpenerDirector, page: str, action: str, **fields: str
    ) -> str:
        """Submit a form of `page` to `action` as a browser would; the page it ends on."""
        with session.open(self.url + page, timeout=30) as response:
            token = csrf_token(response.read().decode())
        form = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(  # noqa: S310 - always this site's https/http URL
            self.url + action, data=form, headers={"Referer": self.url + page}
        )
        with session.open(request, timeout=30) as response:
            return response.read().decode()

    def start(self, timeout: float = 180.0) -> Site:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the site's processes without waiting for them (see `wait_ready`)."""
        log = open(self.data_dir / "runsite.log", "ab")  # noqa: SIM115 - closed with the process
        # In a namespace: every address of both families ("[::]" takes IPv4 too), so the
        # site answers on an IPv6 shared address as well.
        bind = f"[::]:{self.port}" if self.netns else f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            self._argv([*self._command, "runsite", "--bind", bind,
                        "--web-workers", str(self.web_workers)]),
            env=self.env, cwd=self._cwd, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def wait_ready(self, timeout: float = 180.0) -> Site:
        if not wait_until(
            lambda: self.get("/login") == 200 or self.process.poll() is not None, timeout
        ):
            self.stop()
            raise RuntimeError(
                f"site {self.name} did not answer /login within {timeout} s:\n{self.log()}"
            )
        if self.process.poll() is not None:
            raise RuntimeError(f"site {self.name} exited:\n{self.log()}")
        return self

    def log(self, name: str = "runsite.log", *, whole: bool = False) -> str:
        """The end of one of the site's logs (for failure messages), or all of it."""
        path = self.data_dir / name if name == "runsite.log" else self.data_dir / "logs" / name
        text = path.read_text(errors="replace") if path.exists() else ""
        return text if whole else text[-4000:]

    def kill(self) -> None:
        """The crash: every process of the site stops at once, with no clean shutdown.

        Each program of `runsite` runs in a session of its own, so a signal to the
        site's process group alone would leave its workers and Redis running. The
        whole tree is frozen first (no supervisor or gunicorn master left to start
        a replacement), then killed.
        """
        if self.process is not None and self.process.poll() is None:
            frozen: list[int] = []
            for _ in range(10):
                found = [pid for pid in _tree(self.process.pid) if pid not in frozen]
                if not found:
                    break
                for pid in found:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP)
                frozen += found
            global killed_cpu_seconds
            killed_cpu_seconds += sum(_cpu_seconds(pid) for pid in frozen[1:])
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def destroy(self) -> None:
        """The end of a test's site: killed (a clean stop costs about half the CPU of a
        start, for nothing a test still reads), its PostgreSQL database dropped."""
        self.kill()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._database:
            import psycopg

            with psycopg.connect(self._admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self._database}" WITH (FORCE)')


@contextlib.contextmanager
def shared_ip_pair(tmp_path_factory: Any, key: str, shared: str) -> Iterator[tuple[Site, Site]]:
    """Two running sites paired (site-a primary) with `shared` enabled on the recording
    driver, checking their peer every two seconds; destroyed afterwards."""
    started: list[Site] = []
    try:
        for name in ("site-a", "site-b"):
            site = Site(
                name,
                tmp_path_factory.mktemp(name),
                SHARED_IP_DRIVER="recording",
                PEER_CHECK_SECONDS="2",
            )
            site.prepare(key=key, shared_ip=shared)
            started.append(site.start())
        first, second = started
        first.manage(
            "failover", "establish",
            "--backup-host", "127.0.0.1", "--backup-port", str(second.port),
            "--reverse-host", "127.0.0.1", "--reverse-port", str(first.port),
        )  # fmt: skip
        yield first, second
    finally:
        for site in started:
            site.destroy()


# The CPU that the processes of killed sites had used, their own and their reaped
# children's (tests/cpu_report.py): killed, they are no one's to wait for and count.
# The site's first process is waited for, so it counts as a child of this one.
killed_cpu_seconds = 0.0


def _cpu_seconds(pid: int) -> float:
    """User and system time of a process and of the children it has reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    """`root` and every process descended from it, parents before their children."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found = [root]
    for pid in found:
        found += children.get(pid, [])
    return found


def csrf_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def moment(value: Any) -> dt.datetime:
    """A time as the database returns it (SQLite: naive UTC text) as an aware datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(value: Any) -> str | None:
    return None if value is None else moment(value).isoformat()
