"""docker-compose's web health check, run as Docker would against a site configured as in
the README's example (Docker itself does not run here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.sites import ROOT, Site, wait_until

pytestmark = pytest.mark.processes
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def readme_example_env() -> dict[str, str]:
    """The environment file the README's docker-compose section writes."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"cat > primary\.env <<'ENV'\n(.*?)\nENV\n", readme, re.DOTALL).group(1)
    return dict(line.split("=", 1) for line in block.splitlines())


def health_check(port: int) -> list[str]:
    """The web service's health-check command, for a web on `port` instead of 8000."""
    test = COMPOSE["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    argv = [sys.executable if word == "python" else word for word in test[1:]]
    return [word.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for word in argv]


def passes(argv: list[str], env: dict[str, str]) -> bool:
    try:
        return subprocess.run(argv, env=env, capture_output=True, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    example = readme_example_env()
    running = Site(
        "compose",
        tmp_path_factory.mktemp("compose"),
        ALLOWED_HOSTS=example["ALLOWED_HOSTS"],
        CSRF_TRUSTED_ORIGINS=example["CSRF_TRUSTED_ORIGINS"],
    )
    running.launch()
    yield running
    running.destroy()


def test_the_web_health_check_passes_on_a_site_configured_as_the_readme_says(site):
    container_env = {**os.environ, **site.env, **readme_example_env()}
    argv = health_check(site.port)
    assert wait_until(lambda: passes(argv, container_env), timeout=180), site.log()
    # The address alone is refused under the README's ALLOWED_HOSTS: the check must
    # name a permitted host, or Docker would call a healthy web unhealthy.
    assert site.get("/check_health") == 400


def test_the_health_check_fails_once_the_web_is_gone(site):
    container_env = {**os.environ, **site.env, **readme_example_env()}
    argv = health_check(site.port)
    assert wait_until(lambda: passes(argv, container_env), timeout=180), site.log()
    site.stop()
    assert not passes(argv, container_env)
