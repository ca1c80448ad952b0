"""Is this site healthy? The one answer behind the Command API, /api/v1/health/ and /check_health.

Healthy means: the database answers a query, the Celery worker and beat have sent a recent
heartbeat, and the broker (Redis) answers a PING within a second. Nothing here calls the peer:
load balancers ask often and need a cheap answer about this site alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from appliance import health as process_health
from appliance.version import SOFTWARE_VERSION
from failover import replication, shared_ip
from failover.models import FailoverState, Role, SyncRun

BROKER_TIMEOUT_SECONDS = 1
# The role when the database, which holds it, does not answer.
UNKNOWN_ROLE = "unknown"
NEVER_SYNCED = "none"
UNKNOWN_SYNC = "unknown"
PROCESS_NAMES = {
    "worker": "The Celery worker",
    "beat": "The Celery beat scheduler",
    "network": "The network worker (monitor, shared IP, DNS swing, hooks)",
}


@dataclass(frozen=True)
class Problem:
    """One failed check.

    `summary` says what failed and is safe for anyone to read (it goes to the unauthenticated
    /check_health); `cause` adds what an administrator needs to fix it, and may name hosts,
    socket paths or database errors, never a password.
    """

    check: str
    summary: str
    cause: str = ""

    @property
    def message(self) -> str:
        return f"{self.summary} {self.cause}" if self.cause else self.summary


@dataclass(frozen=True)
class SiteHealth:
    appliance_id: str  # the site's GUID
    appliance: str  # its name (APPLIANCE_NAME)
    version: str
    failover_role: str
    problems: tuple[Problem, ...]
    enabled_shared_ips: tuple[str, ...]
    last_data_sync_time: datetime | None
    last_data_sync_status: str
    replication: dict[str, object] | None = None

    @property
    def success(self) -> bool:
        return not self.problems

    @property
    def errors(self) -> list[str]:
        """Every failed check, a sentence or two each, with its cause (for administrators)."""
        return [problem.message for problem in self.problems]

    @property
    def error_message(self) -> str:
        return " ".join(self.errors)

    @property
    def public_errors(self) -> list[str]:
        """Every failed check, without causes: what an unauthenticated caller may see."""
        return [problem.summary for problem in self.problems]

    @property
    def failover_configured(self) -> bool | None:
        """Whether this site is in a relationship; None when the database cannot say."""
        if self.failover_role == UNKNOWN_ROLE:
            return None
        return self.failover_role != Role.NONE


def site_health() -> SiteHealth:
    """Check the database, the worker, beat and the broker; report them with the site's role."""
    problems: list[Problem] = []
    broker_problem = check_broker()
    database_problem = check_database()
    if database_problem is None:
        role = FailoverState.load().role
        problems.extend(check_processes())
        # A broker that does not answer would make the worker's record wait for it too.
        shared_ips = enabled_shared_ips(recorded=broker_problem is None)
        synced_at, sync_status = last_data_sync()
        lag = replication.lag()
        replicating = lag.as_dict() if lag.following else None
    else:
        # Everything else the report needs lives in the database, apart from the
        # network worker's record of the shared IP.
        problems.append(database_problem)
        role, synced_at, sync_status = UNKNOWN_ROLE, None, UNKNOWN_SYNC
        shared_ips = shared_ip.recorded_held_addresses() if broker_problem is None else []
        replicating = None
    if broker_problem is not None:
        problems.append(broker_problem)
    return SiteHealth(
        appliance_id=settings.APPLIANCE_ID,
        appliance=settings.APPLIANCE_NAME,
        version=SOFTWARE_VERSION,
        failover_role=role,
        problems=tuple(problems),
        enabled_shared_ips=tuple(shared_ips),
        last_data_sync_time=synced_at,
        last_data_sync_status=sync_status,
        replication=replicating,
    )


def enabled_shared_ips(*, recorded: bool = True) -> list[str]:
    """The shared IP addresses this site holds right now (the network worker's record;
    without it, or with `recorded=False`, the interface itself).

    The primary lists its addresses (IPv4 first) while it holds them; a backup holds none.
    """
    return shared_ip.held_addresses(recorded=recorded)


def last_data_sync() -> tuple[datetime | None, str]:
    """When the last finished data sync ended and how ("none" when this site never synced).

    On the backup these are its own runs; the primary reports what its backup
    last told it (the peer check carries the backup's last sync). Under continuous
    replication, the last word between the sites about the log counts.
    """
    state = FailoverState.load()
    lag = replication.lag()
    if lag.following and lag.contact_at is not None:
        # Continuously: the data was last known in step at the last word between the sites.
        return lag.contact_at, "succeeded" if lag.connected else "failed"
    if state.role == Role.PRIMARY:
        if state.peer_last_sync_at is None:
            return None, NEVER_SYNCED
        return state.peer_last_sync_at, state.peer_last_sync_status
    run = SyncRun.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    if run is None:
        return None, NEVER_SYNCED
    return run.finished_at, run.status


def check_database() -> Problem | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return Problem(
            "database",
            "The database did not answer a query.",
            _sentence(f"The {connection.vendor} database said: {error}"),
        )
    return None


def check_processes() -> list[Problem]:
    """A problem for each of the worker and beat whose heartbeat is missing or stale."""
    problems = []
    for process in process_health.processes():
        if process.alive:
            continue
        name = PROCESS_NAMES.get(process.component, f"The {process.component} process")
        if process.last_seen is None:
            summary = f"{name} has not sent a heartbeat yet."
        else:
            seconds = int((timezone.now() - process.last_seen).total_seconds())
            summary = f"{name} has not sent a heartbeat for {seconds} s."
        cause = f"It should send one every {settings.HEARTBEAT_SECONDS} s; is it running?"
        problems.append(Problem(process.component, summary, cause))
    return problems


def check_broker() -> Problem | None:
    """PING the broker once, giving up after BROKER_TIMEOUT_SECONDS (no retries)."""
    url = settings.REDIS_URL
    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=BROKER_TIMEOUT_SECONDS,
            socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as error:
        return Problem(
            "broker",
            f"The broker (Redis) did not answer a PING within {BROKER_TIMEOUT_SECONDS} s.",
            _sentence(f"Redis at {redis_location(url)}: {error}"),
        )
    return None


def redis_location(url: str) -> str:
    """Where a Redis URL points (socket path or host:port), without its credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or 6379
    except ValueError:
        port = "?"
    return f"{host}:{port}"


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."
