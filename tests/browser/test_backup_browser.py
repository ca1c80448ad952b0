"""In a real browser: Management > Backup downloads a backup that another site restores;
the daily backup's form refuses a folder that does not exist."""

import tarfile

import orjson
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.sites import Site

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def open_backup_page(page, site) -> None:
    log_in(page, site)
    page.get_by_role("button", name="Management").click()
    page.get_by_role("link", name="Backup").click()
    expect(page.get_by_role("heading", name="Backup", exact=True)).to_be_visible()


def test_an_administrator_downloads_a_backup_that_restores_elsewhere(new_page, live_site, tmp_path):
    live_site.generate_reports(25, "--with-recordings", "2")
    page = new_page()
    open_backup_page(page, live_site)
    expect(page.get_by_test_id("backup-excludes")).to_contain_text("pre-shared key")

    with page.expect_download() as download:
        page.get_by_test_id("download-backup").click()

    assert download.value.suggested_filename.startswith("site-backup-browser-")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    with tarfile.open(path, "r:gz") as archive:
        manifest = orjson.loads(archive.extractfile("manifest.json").read())
    assert manifest["counts"]["appliance.report"] == 25
    assert manifest["counts"]["auth.user"] == 1
    other = Site("restored", tmp_path / "other")
    try:
        said = other.manage("failover", "restore", str(path)).stdout
        assert "1 user(s), 0 group(s), 0 API account(s), 25 report(s), 2 recording(s)" in said
        assert other.count("appliance_report") == 25
    finally:
        other.destroy()


def test_the_daily_backup_form_says_what_is_wrong_with_a_folder(new_page, live_site):
    page = new_page()
    open_backup_page(page, live_site)

    page.get_by_label("Back up this site every day").check()
    page.get_by_label("Folder").fill("/nonexistent/backups")
    page.get_by_role("button", name="Save Changes").click()

    expect(page.get_by_test_id("scheduled-backup-form")).to_contain_text(
        "/nonexistent/backups does not exist or is not a folder"
    )
