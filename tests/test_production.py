"""DEPLOYMENT=production: HTTPS only, Secure cookies, HSTS, a Content Security Policy, and
`manage.py check --deploy` clean. Each test runs the site's own settings in a process of
its own, with the profile's environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sites import ROOT, _migrated_template

HOST = "support.example.com"


def production_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "APPLIANCE_DATA_DIR": str(data_dir),
        "APPLIANCE_NAME": "prod",
        "ALLOWED_HOSTS": HOST,
        "DEPLOYMENT": "production",
        **extra,
    }


def manage(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *argv],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_check_deploy_is_clean_in_production(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_check_deploy_is_not_clean_in_development(tmp_path):
    env = {**production_env(tmp_path), "DEPLOYMENT": "development"}
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # no HSTS


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("DEBUG", "DEBUG=1 is refused with DEPLOYMENT=production"),
        ("PEER_ALLOW_PLAIN_HTTP", "PEER_ALLOW_PLAIN_HTTP=1 is for development only"),
        ("SECRET_KEY", "SECRET_KEY is too short for DEPLOYMENT=production"),
    ],
)
def test_production_refuses_development_switches(tmp_path, variable, message):
    value = "k" * 40 if variable == "SECRET_KEY" else "1"
    result = manage(production_env(tmp_path, **{variable: value}), "check")
    assert result.returncode != 0
    assert message in result.stderr


PROBE = """
import json
from django.test import Client
plain, secure = Client(), Client()
answers = {}
login = plain.get("/login", HTTP_HOST="%(host)s")
answers["plain_login"] = [login.status_code, login.get("Location", "")]
health = plain.get("/check_health", HTTP_HOST="%(host)s")
answers["plain_health"] = health.status_code
page = secure.get("/login", HTTP_HOST="%(host)s", secure=True)
answers["secure_login"] = page.status_code
answers["hsts"] = page.get("Strict-Transport-Security", "")
answers["csp"] = page.get("Content-Security-Policy", "")
answers["secure_cookies"] = {name: bool(c["secure"]) for name, c in page.cookies.items()}
print(json.dumps(answers))
"""


def test_a_production_site_answers_over_https_only(tmp_path):
    env = production_env(tmp_path)
    shutil.copyfile(_migrated_template({"PATH": env["PATH"]}), tmp_path / "db.sqlite3")
    result = manage(env, "shell", "--no-imports", "-c", PROBE % {"host": HOST})
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["plain_login"] == [301, f"https://{HOST}/login"]
    assert answers["plain_health"] in (200, 500), "a health probe is not redirected"
    assert answers["secure_login"] == 200
    assert answers["hsts"] == "max-age=31536000; includeSubDomains"
    assert "script-src 'self'" in answers["csp"]
    assert "frame-ancestors 'none'" in answers["csp"]
    assert "'unsafe-inline'" not in answers["csp"]
    assert answers["secure_cookies"] and all(answers["secure_cookies"].values())
