"""The version comes from git, and the site shows it on its pages, its CLI and its API."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from appliance import version
from appliance.version import SOFTWARE_VERSION
from tests.sites import ROOT


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root, check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A small git repository laid out like this one: pyproject.toml with setuptools-scm."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    git(root, "init", "--quiet")
    git(root, "add", "pyproject.toml")
    git(root, "commit", "--quiet", "-m", "first")
    return root


def test_this_checkout_runs_a_version_that_names_its_commit():
    commit = version.checked_out_commit()
    assert commit is not None
    assert version.names_commit(SOFTWARE_VERSION, commit), SOFTWARE_VERSION
    assert SOFTWARE_VERSION != version.UNKNOWN_VERSION


def test_it_names_a_commit_by_the_hash_in_the_local_part():
    commit = "3766edc6f66ef17e9469dabf4d2fdf962ed9c728"
    assert version.names_commit("0.1.dev125+g3766edc6f", commit)
    assert version.names_commit("0.1.dev125+g3766edc6f.d20261130", commit)
    assert not version.names_commit("0.1.dev126+g1234567ab", commit)
    assert not version.names_commit("0.2.0", commit)
    assert not version.names_commit("0.1.dev1+g37", commit)


def test_a_checkout_that_moved_past_its_install_asks_git(checkout):
    first = version.software_version(checkout)
    assert version.names_commit(first, git(checkout, "rev-parse", "HEAD")), first
    (checkout / "README").write_text("more\n")
    git(checkout, "add", "README")
    git(checkout, "commit", "--quiet", "-m", "second")
    second = version.software_version(checkout)
    assert version.names_commit(second, git(checkout, "rev-parse", "HEAD")), second
    assert second != first


def test_the_version_git_gave_is_kept_for_that_commit(checkout):
    found = version.software_version(checkout)
    commit = git(checkout, "rev-parse", "HEAD")
    kept = checkout / version.KEPT
    assert kept.read_text() == f"{commit} {found}\n"
    kept.write_text(f"{commit} 5.6.7\n")
    assert version.software_version(checkout) == "5.6.7"
    kept.write_text(f"{'0' * 40} 5.6.7\n")
    assert version.software_version(checkout) == found


def test_a_tag_is_a_release_and_the_commits_after_it_count_towards_the_next(checkout):
    git(checkout, "tag", "v1.4.2")
    assert version.software_version(checkout) == "1.4.2"
    (checkout / "README").write_text("more\n")
    git(checkout, "add", "README")
    git(checkout, "commit", "--quiet", "-m", "after the release")
    assert version.software_version(checkout).startswith("1.4.3.dev1+g")


def test_outside_a_checkout_the_installed_version_is_read(tmp_path):
    assert version.checked_out_commit(tmp_path) is None
    assert version.software_version(tmp_path) == version.installed_version()


def test_failover_version_prints_the_software_version(capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("failover", "--version")
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == SOFTWARE_VERSION


@pytest.mark.django_db
def test_failover_status_says_the_version(capsys):
    call_command("failover", "status", "--json")
    assert json.loads(capsys.readouterr().out)["version"] == SOFTWARE_VERSION
    call_command("failover", "status")
    assert f"Version:       {SOFTWARE_VERSION}" in capsys.readouterr().out


def test_every_page_shows_the_version_in_its_footer(admin_client, anon_client):
    for client, path in ((admin_client, "/status/"), (anon_client, "/login")):
        page = client.get(path).content.decode()
        assert f'<span data-testid="software-version">{SOFTWARE_VERSION}</span>' in page, path
