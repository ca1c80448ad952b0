"""docker-compose.yml describes a complete production site (Docker itself does not run here)."""

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_it_runs_web_worker_beat_redis_and_postgres():
    assert {"web", "worker", "beat", "redis", "postgres", "migrate"} <= set(SERVICES)


def test_site_processes_share_one_image_and_the_production_services():
    for name in ("web", "worker", "beat", "migrate"):
        service = SERVICES[name]
        assert service["image"] == "appliance-failover:latest"
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_services_wait_for_healthy_dependencies():
    for name in ("web", "worker", "beat"):
        conditions = SERVICES[name]["depends_on"]
        assert conditions["migrate"]["condition"] == "service_completed_successfully"
        assert conditions["redis"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "redis", "postgres"):
        assert "healthcheck" in SERVICES[name], name


def test_secrets_come_from_the_environment_not_the_file():
    text = (Path(__file__).parent.parent / "docker-compose.yml").read_text()
    assert "SECRET_KEY: ${SECRET_KEY:?" in text
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text
