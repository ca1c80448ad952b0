"""The data folder is 0700 and every file the site writes is 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance import config, files
from tests.sites import Site


def modes_open_to_others(folder: Path) -> list[str]:
    """Every path under `folder` that its group or others may use, with its mode."""
    found = []
    for root, _folders, names in os.walk(folder):
        for path in [Path(root), *(Path(root) / name for name in names)]:
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                found.append(f"{path.relative_to(folder)} {stat.filemode(mode)}")
    return found


def test_restrict_takes_group_and_other_access_away_and_keeps_the_owners(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs").chmod(0o755)
    (tmp_path / "logs" / "web.log").write_text("x")
    (tmp_path / "logs" / "web.log").chmod(0o644)
    (tmp_path / "hook").write_text("#!/bin/sh\n")
    (tmp_path / "hook").chmod(0o755)
    (tmp_path / "elsewhere").symlink_to("/etc/hostname")
    assert files.restrict(tmp_path) == 3
    assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "logs" / "web.log").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "hook").stat().st_mode) == 0o700
    assert stat.S_IMODE(os.stat("/etc/hostname").st_mode) & 0o044  # not followed
    assert files.restrict(tmp_path) == 0


def test_the_data_folder_is_made_private(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir(mode=0o755)
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(folder))
    assert config.data_dir(tmp_path) == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.fixture
def loose_site(tmp_path):
    """A site started from a shell whose umask lets everyone read what it writes."""
    site = Site("loose", tmp_path)
    previous = os.umask(0o022)
    try:
        site.launch()
    finally:
        os.umask(previous)
    yield site.wait_ready()
    site.destroy()


@pytest.mark.processes
def test_a_site_started_with_umask_022_keeps_its_files_to_itself(loose_site):
    site = loose_site
    # Files the site writes at work: recordings, an alert's mail, an export.
    site.generate_reports(3, "--with-recordings", "2")
    site.shell(
        "from django.core.mail import send_mail\n"
        "from failover import exports\n"
        "send_mail('Test', 'An alert.', 'site@example.com', ['admin@example.com'])\n"
        "exports.export_data('a test of the modes')\n"
    )
    folder = site.data_dir
    written = {path.name for path in folder.iterdir()}
    assert {"db.sqlite3", "secret_key", "logs", "media", "mail", "exports"} <= written
    assert any((folder / "media").rglob("*.*")), "no recording was written"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes_open_to_others(folder) == []
