"""A bad environment variable stops the site at start-up with a message naming it."""

import subprocess
import sys
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from appliance import config
from tests.sites import ROOT


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("HEARTBEAT_SECONDS", "0", "HEARTBEAT_SECONDS=0 is too small"),
        ("HEARTBEAT_SECONDS", "ten", "HEARTBEAT_SECONDS='ten' is not a whole number"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL must start with sqlite:// or postgresql://"),
        ("REDIS_URL", "amqp://broker", "REDIS_URL must start with redis://"),
        ("SECRET_KEY", "short", "SECRET_KEY is too short"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is not one of"),
        ("APPLIANCE_ID", "site-a", "APPLIANCE_ID='site-a' is not a GUID"),
        ("SESSION_COOKIE_NAME", "my session", "SESSION_COOKIE_NAME='my session' is not a cookie"),
        ("CSRF_COOKIE_NAME", "sessionid-x", "SESSION_COOKIE_NAME and CSRF_COOKIE_NAME are both"),
        ("TRUSTED_PROXIES", "proxy.example", "TRUSTED_PROXIES: 'proxy.example' is not an IP"),
        ("DEPLOYMENT", "staging", "DEPLOYMENT='staging' is not one of"),
    ],
)
def test_a_bad_value_stops_the_site_naming_the_variable(tmp_path, variable, value, message):
    env = {
        "PATH": "/usr/bin:/bin",
        "APPLIANCE_DATA_DIR": str(tmp_path),
        "APPLIANCE_NAME": "x",
        variable: value,
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_a_missing_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = config.secret_key(tmp_path)
    assert len(first) >= 50
    assert config.secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_a_missing_appliance_id_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("APPLIANCE_ID", raising=False)
    first = config.appliance_id(tmp_path)
    assert uuid.UUID(first).version == 4
    assert config.appliance_id(tmp_path) == first
    other = tmp_path / "other-site"
    other.mkdir()
    assert config.appliance_id(other) != first
    assert sorted(path.name for path in tmp_path.iterdir()) == ["appliance_id", "other-site"]


def test_an_appliance_id_from_the_environment_is_taken_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_ID", "0F3C2D4E-5A6B-4C7D-8E9F-0A1B2C3D4E5F")
    assert config.appliance_id(tmp_path) == "0f3c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
    assert not (tmp_path / "appliance_id").exists()


def test_unset_redis_url_means_the_embedded_server_in_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert config.redis_url(tmp_path) == (f"unix://{tmp_path}/redis.sock", True)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    assert config.redis_url(tmp_path) == ("redis://127.0.0.1:6379/3", False)


def test_lists_are_split_on_commas(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", " a.example.com, b.example.com ,")
    assert config.env_list("ALLOWED_HOSTS", []) == ["a.example.com", "b.example.com"]


def test_an_unwritable_data_folder_is_named(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(blocker / "sub"))
    with pytest.raises(ImproperlyConfigured, match="APPLIANCE_DATA_DIR="):
        config.data_dir(tmp_path)


def test_cookie_names_are_derived_from_the_sites_name():
    assert config.cookie_suffix("site-a") == "site-a"
    assert config.cookie_suffix("Site A (lab)") == "Site-A-lab"
    assert config.cookie_suffix("***") == "site"


def test_two_sites_on_one_host_get_different_cookie_names(tmp_path):
    names = set()
    for site in ("site-a", "site-b"):
        env = {"PATH": "/usr/bin:/bin", "APPLIANCE_DATA_DIR": str(tmp_path / site)}
        env["APPLIANCE_NAME"] = site
        code = "from django.conf import settings as s\n"
        code += "print(s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME)"
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", code],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        names.update(result.stdout.split())
    assert names == {
        "sessionid-site-a", "csrftoken-site-a", "sessionid-site-b", "csrftoken-site-b",
    }  # fmt: skip


def test_every_variable_the_site_reads_is_in_the_readmes_table():
    """Each config.env_*("NAME") in the settings and the logging configuration, and each
    os.environ lookup of the process's own, has its row in README's table."""
    import ast

    table = "\n".join(
        line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")
    )
    names = set()
    for module in ("appliance/settings.py", "appliance/logconfig.py", "appliance/config.py",
                   "appliance/gunicorn_config.py"):  # fmt: skip
        for node in ast.walk(ast.parse((ROOT / module).read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            first = node.args[0]
            reads = name.startswith("env_") or name in ("_raw", "get")
            constant = first.value if isinstance(first, ast.Constant) else None
            if reads and isinstance(constant, str) and constant.isupper():
                names.add(constant)
    assert {"LOG_FORMAT", "METRICS_TOKEN", "SESSION_COOKIE_NAME", "ALERT_RETRY_SECONDS"} <= names
    missing = sorted(name for name in names if f"`{name}`" not in table)
    assert missing == []
