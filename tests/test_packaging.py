"""The wheel is a whole site: code, pages, static files, migrations and the `appliance` command.

It is built from the source tree and run from where it was unpacked, with the
test environment's dependencies but none of the source tree's files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from appliance import version
from tests.sites import ROOT

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("appliance_failover-*.whl")
    return built


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("installed")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder)
    return folder


def run(unpacked: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(unpacked),
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_NAME": "installed",
    }
    return subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def build_wheel(source: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )  # fmt: skip


def test_the_wheel_carries_the_version_of_the_commit_it_was_built_from(wheel, unpacked, tmp_path):
    commit = version.checked_out_commit()
    assert commit is not None
    built = wheel.name.split("-")[1]
    assert version.names_commit(built, commit), built
    said = run(
        unpacked,
        tmp_path,
        "-c",
        "from appliance.version import SOFTWARE_VERSION; print(SOFTWARE_VERSION)",
    )
    assert said.stdout.strip() == built, said.stderr


def test_a_source_tree_without_git_takes_its_version_from_the_environment(tmp_path):
    """What the Docker build does: no .git in its context, the version as a build argument."""
    source = tmp_path / "source"
    source.mkdir()
    # What the Dockerfile copies into its build.
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("appliance", "security", "failover", "templates", "static"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    refused = build_wheel(source, tmp_path / "refused")
    assert refused.returncode != 0
    assert "unable to detect version" in refused.stderr + refused.stdout
    built = build_wheel(source, tmp_path / "built", SETUPTOOLS_SCM_PRETEND_VERSION="7.8.9")
    assert built.returncode == 0, built.stderr
    assert [path.name for path in (tmp_path / "built").iterdir()] == [
        "appliance_failover-7.8.9-py3-none-any.whl"
    ]


def test_the_wheel_holds_every_template_static_file_and_migration(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "static"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                assert f"appliance/{path.relative_to(ROOT)}" in names
    for app in ("appliance", "security", "failover"):
        for path in (ROOT / app / "migrations").glob("0*.py"):
            assert str(path.relative_to(ROOT)) in names
    assert "appliance/gunicorn_config.py" in names


def test_the_wheel_installs_the_appliance_command(wheel):
    archive = zipfile.ZipFile(wheel)
    (entry_points,) = [name for name in archive.namelist() if name.endswith("entry_points.txt")]
    text = archive.read(entry_points).decode()
    assert "[console_scripts]" in text
    assert "appliance = appliance.__main__:main" in text


def test_the_unpacked_wheel_runs_a_site_that_renders_its_pages(unpacked, tmp_path):
    where = run(unpacked, tmp_path, "-c", "import appliance; print(appliance.__file__)")
    assert where.stdout.strip().startswith(str(unpacked)), where.stderr
    assert run(unpacked, tmp_path, "-m", "appliance", "migrate", "--noinput").returncode == 0
    page = run(
        unpacked, tmp_path, "-m", "appliance", "shell", "--no-imports", "-c",
        "from django.test import Client\n"
        "from django.test.utils import override_settings\n"
        "with override_settings(ALLOWED_HOSTS=['testserver']):\n"
        "    response = Client().get('/login')\n"
        "print(response.status_code, 'Log in' in response.content.decode())",
    )  # fmt: skip
    assert page.stdout.split()[-2:] == ["200", "True"], page.stderr
    for name in ("css/appliance.css", "js/failover.js", "bootstrap/css/bootstrap.min.css"):
        found = run(unpacked, tmp_path, "-m", "appliance", "findstatic", name)
        assert found.returncode == 0, found.stderr
        assert str(unpacked) in found.stdout or "bootstrap" in name, found.stdout
