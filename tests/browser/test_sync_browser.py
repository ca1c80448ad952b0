"""In a real browser: Sync Now on the backup, the live progress, then the history row."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_PASSWORD, log_in
from tests.sites import Site, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.processes]
KEY = "browser sync shared key 001"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser-sync")
    primary, backup = Site("primary", base), Site("backup", base)
    for site in (primary, backup):
        site.prepare(key=KEY, admin_password=ADMIN_PASSWORD)
    primary.generate_reports(3000, "--seed", "11")
    for site in (primary, backup):
        site.start()
    primary.manage(
        "failover", "establish",
        "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
        "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
    )  # fmt: skip
    assert wait_until(
        lambda: (backup.status()["last_sync"] or {}).get("status") == "succeeded", timeout=180
    )
    # Slow enough to watch: about 3 MB at 2 Mbit/s takes some seconds.
    backup.shell(
        "from failover.models import BackupSettings\n"
        "s = BackupSettings.load(); s.bandwidth_limit = 2_000_000; s.save()"
    )
    yield primary, backup
    for site in (primary, backup):
        site.destroy()


def test_sync_now_shows_live_progress_and_then_the_history_row(browser, pair):
    _primary, backup = pair
    context = browser.new_context()
    context.set_default_timeout(30_000)
    page = context.new_page()
    log_in(page, backup)
    page.goto(backup.url + "/management/failover/")
    form = page.get_by_test_id("sync-form")
    form.get_by_label("Full resync").check()
    form.get_by_role("button", name="Sync Now").click()
    expect(page.get_by_text("Full sync #2 started.")).to_be_visible()
    progress = page.get_by_test_id("sync-progress-text")
    expect(progress).to_contain_text("Sync #2 running", timeout=60_000)
    expect(progress).to_contain_text("records")
    # When the run ends the page reloads itself and the history shows it.
    latest = page.get_by_test_id("sync-history").get_by_test_id("sync-row").first
    expect(latest).to_contain_text("Succeeded", timeout=300_000)
    expect(latest).to_contain_text("#2")
    expect(page.get_by_test_id("last-sync-status")).to_have_text("Succeeded")
    context.close()
