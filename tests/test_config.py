"""A bad environment variable stops the site at start-up with a message naming it."""

import subprocess
import sys

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
    ],
)
def test_a_bad_value_stops_the_site_naming_the_variable(tmp_path, variable, value, message):
    env = {"PATH": "/usr/bin:/bin", "APPLIANCE_DATA_DIR": str(tmp_path), variable: value}
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
