"""docker-compose.yml describes a complete production site (Docker itself does not run here)."""

import re
from pathlib import Path

import yaml
from django.conf import settings

COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SITE_PROCESSES = ("web", "worker", "network-worker", "replication-worker", "beat", "migrate")
WORKERS = ("worker", "network-worker", "replication-worker")
PRIVILEGE_KEYS = ("cap_add", "privileged", "network_mode", "user", "pid", "devices")


def queues(service: dict) -> set[str]:
    command = service["command"]
    return set(command[command.index("--queues") + 1].split(","))


def published(service: dict) -> list[str]:
    """The service's port mappings with ${VAR:-default} replaced by the default."""
    return [re.sub(r"\$\{\w+:-(\w+)\}", r"\1", mapping) for mapping in service.get("ports", [])]


def test_it_runs_web_workers_beat_redis_and_postgres():
    assert {"web", "worker", "network-worker", "beat", "redis", "postgres", "migrate"} <= set(
        SERVICES
    )


def test_site_processes_share_one_image_and_the_production_services():
    for name in SITE_PROCESSES:
        service = SERVICES[name]
        assert service["image"] == "appliance-failover:latest"
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["REDIS_URL"].startswith("redis://")
        assert service["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")


def test_services_wait_for_healthy_dependencies():
    for name in ("web", "worker", "network-worker", "replication-worker", "beat"):
        conditions = SERVICES[name]["depends_on"]
        assert conditions["migrate"]["condition"] == "service_completed_successfully"
        assert conditions["redis"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "network-worker", "redis", "postgres"):
        assert "healthcheck" in SERVICES[name], name


def test_secrets_come_from_the_environment_not_the_file():
    text = (Path(__file__).parent.parent / "docker-compose.yml").read_text()
    assert "SECRET_KEY: ${SECRET_KEY:?" in text
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text


def test_every_queue_is_served_by_exactly_one_worker():
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    for queue in routed | {"celery"}:
        serving = [name for name in WORKERS if queue in queues(SERVICES[name])]
        assert len(serving) == 1, f"queue {queue} is served by {serving}"


def test_the_failover_path_runs_in_the_network_worker():
    for task in (
        "failover.tasks.poll_primary",
        "failover.tasks.follow_role",
        "failover.tasks.announce_shared_ip",
    ):
        assert settings.CELERY_TASK_ROUTES[task]["queue"] == "network"
    assert queues(SERVICES["network-worker"]) == {"network"}
    assert "network" not in queues(SERVICES["worker"])


def test_the_network_worker_has_host_networking_and_only_the_two_network_capabilities():
    worker = SERVICES["network-worker"]
    assert worker["network_mode"] == "host"
    assert worker["cap_drop"] == ["ALL"]
    assert sorted(worker["cap_add"]) == ["NET_ADMIN", "NET_RAW"]
    # Capabilities take effect only for root; the image's own user would hold none.
    assert worker["user"] == "root"
    assert "privileged" not in worker
    assert "ports" not in worker


def test_no_other_service_has_extra_privileges():
    for name, service in SERVICES.items():
        if name == "network-worker":
            continue
        granted = [key for key in PRIVILEGE_KEYS if key in service]
        assert not granted, f"{name} has {granted}"


def test_the_network_worker_reaches_redis_and_postgres_on_the_hosts_loopback_only():
    environment = SERVICES["network-worker"]["environment"]
    assert re.search(r"@127\.0\.0\.1:\$\{POSTGRES_HOST_PORT:-5432\}/", environment["DATABASE_URL"])
    assert environment["REDIS_URL"].startswith("redis://127.0.0.1:${REDIS_HOST_PORT:-6379}/")
    assert published(SERVICES["postgres"]) == ["127.0.0.1:5432:5432"]
    assert published(SERVICES["redis"]) == ["127.0.0.1:6379:6379"]
    # The rest of the site keeps using the service names on the compose network.
    for name in ("web", "worker", "beat", "migrate"):
        assert SERVICES[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert "@postgres:5432/" in SERVICES[name]["environment"]["DATABASE_URL"]


def test_the_network_worker_checks_this_sites_web_to_fence_a_dead_service():
    environment = SERVICES["network-worker"]["environment"]
    assert environment["WEB_SELF_URL"] == "http://127.0.0.1:${WEB_PORT:-8000}"
    assert published(SERVICES["web"]) == ["8000:8000"]
    # Everything else the site is configured with is the same as the other processes'.
    for key, value in SERVICES["worker"]["environment"].items():
        if key not in ("DATABASE_URL", "REDIS_URL"):
            assert environment[key] == value, key
