"""In a real browser: two real sites over TLS are paired, shown and broken from their pages.

Each site is its own processes (gunicorn over TLS, worker, beat), database and Redis;
they talk signed HTTPS on loopback. The browser trusts neither certificate (they come
from a CA made for the test), so its contexts skip certificate checks; the sites
themselves pin each other's certificate.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from security import keys
from tests.browser.conftest import ADMIN_PASSWORD, log_in
from tests.certs import make_ca
from tests.sites import Site, free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.processes]
KEY = "browser pairing shared key 0001"
# How long a page may take when its request talks to the other site (each peer call has
# its own timeout of a few seconds; a loaded test machine adds to it).
PEER_WAIT_MS = 90_000


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("ca"))
    base = tmp_path_factory.mktemp("browser-pair")
    started = []
    try:
        for name in ("primary", "backup"):
            # No CA bundle: the primary pins the certificate the backup presents.
            site = Site(name, base, ca=ca, PEER_CHECK_SECONDS="2", PEER_CA_BUNDLE="")
            site.prepare(key=KEY, admin_password=ADMIN_PASSWORD)
            started.append(site.start())
        yield started
    finally:
        for site in started:
            site.destroy()


@pytest.fixture
def primary(sites) -> Site:
    return sites[0]


@pytest.fixture
def backup(sites) -> Site:
    return sites[1]


@pytest.fixture(autouse=True)
def unpaired(sites):
    """Every test starts and ends with both sites running, unpaired, holding the same key."""
    yield
    for site in sites:
        if site.process is None:
            site.start()
        status = site.status()
        if status["key_fingerprint"] != keys.fingerprint(KEY):
            site.manage("failover", "set-key", stdin=KEY + "\n")
        if status["role"] != "none":
            site.manage("failover", "break", "--force")


def last_sync(site: Site) -> dict:
    return site.status()["last_sync"] or {}


def establish(primary: Site, backup: Site) -> None:
    """Pair through the CLI, pinning the backup's certificate: the setup for the other tests.

    Returns once the backup's first data sync has finished: it replaces the backup's
    accounts with the primary's, which ends any session opened on the backup before.
    """
    before = last_sync(backup).get("id", 0)
    primary.manage(
        "failover", "establish",
        "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
        "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
        "--backup-fingerprint", backup.certificate_fingerprint,
    )  # fmt: skip
    synced = wait_until(
        lambda: (
            (run := last_sync(backup)).get("id", 0) > before
            and run["status"] in ("succeeded", "failed")
        ),
        timeout=60,
    )
    assert synced, f"the backup's first sync did not finish: {last_sync(backup)}"


def open_failover(page, site: Site) -> None:
    log_in(page, site)
    expect(page).to_have_url(site.url + "/status/")
    page.get_by_role("button", name="Management").click()
    page.get_by_role("link", name="Failover").click()
    expect(page.get_by_role("heading", name="Management · Failover")).to_be_visible()


def fill_establish_form(page, backup_port: int, reverse_port: int) -> None:
    backup_details = page.get_by_role("group", name="New Backup Site Connection Details")
    backup_details.get_by_label("Host name or IP address").fill("127.0.0.1")
    backup_details.get_by_label("TLS port").fill(str(backup_port))
    reverse = page.get_by_role("group", name="Reverse Connection Details to this Primary Site")
    reverse.get_by_label("Host name or IP address of this site").fill("127.0.0.1")
    reverse.get_by_label("TLS port of this site").fill(str(reverse_port))
    page.get_by_role("button", name="Establish Relationship").click()


def break_relationship(page, *, force: bool = False) -> None:
    """Submit the Break Relationship form, with its Force box ticked or not."""
    form = page.get_by_test_id("break-form")
    if force:
        form.get_by_label("Force: break on this site even if the other site").check()
    form.get_by_role("button", name="Break Relationship").click()


def role_badge(page):
    return page.get_by_role("navigation").get_by_test_id("role-badge")


def test_establishing_from_the_primary_shows_the_backups_certificate_then_pairs(
    new_page, primary, backup
):
    page = new_page()
    open_failover(page, primary)
    fill_establish_form(page, backup_port=backup.port, reverse_port=primary.port)

    expect(page.get_by_role("heading", name="Check the backup's certificate")).to_be_visible(
        timeout=PEER_WAIT_MS
    )
    expect(page.get_by_test_id("backup-fingerprint")).to_have_text(backup.certificate_fingerprint)
    expect(page.get_by_text(f"The site at 127.0.0.1:{backup.port} presents")).to_be_visible()
    assert primary.status()["role"] == "none"
    assert backup.status()["role"] == "none"

    page.get_by_role("button", name="Establish Relationship").click()
    expect(page.get_by_role("alert")).to_contain_text(
        f"Relationship established: this site is primary, backup at 127.0.0.1:{backup.port} "
        "is backup.",
        timeout=PEER_WAIT_MS,
    )
    expect(page).to_have_url(primary.url + "/management/failover/")
    expect(role_badge(page)).to_have_text("Primary")
    expect(page.get_by_test_id("own-role")).to_have_text("Primary")
    expect(page.get_by_test_id("peer-name")).to_have_text("backup")
    expect(page.get_by_test_id("peer-role")).to_have_text("Backup")
    expect(page.get_by_test_id("peer-fingerprint")).to_have_text(backup.certificate_fingerprint)
    expect(page.get_by_test_id("history")).to_contain_text("Relationship established")
    assert primary.status()["role"] == "primary"
    assert backup.status()["role"] == "backup"


def test_the_backup_shows_its_role_and_sends_the_primarys_tabs_to_status(new_page, primary, backup):
    establish(primary, backup)
    page = new_page()
    log_in(page, backup)

    expect(page).to_have_url(backup.url + "/status/")
    navbar = page.get_by_role("navigation")
    expect(role_badge(page)).to_have_text("Backup")
    expect(navbar.get_by_role("link", name="Status")).to_be_visible()
    expect(navbar.get_by_role("button", name="Management")).to_be_visible()
    for tab in ("Users", "Reports", "Configuration"):
        expect(navbar.get_by_role("link", name=tab)).to_have_count(0)

    page.goto(backup.url + "/users/")
    expect(page).to_have_url(backup.url + "/status/")
    expect(page.get_by_role("alert")).to_contain_text(
        f"This site is the backup. Users, reports, configuration and API accounts are managed "
        f"on the primary, primary at 127.0.0.1:{primary.port}"
    )


def test_breaking_from_the_backups_failover_page_returns_both_sites_to_none(
    new_page, primary, backup
):
    establish(primary, backup)
    page = new_page()
    open_failover(page, backup)
    expect(page.get_by_test_id("own-role")).to_have_text("Backup")
    expect(page.get_by_test_id("peer-role")).to_have_text("Primary")

    break_relationship(page)
    expect(page.get_by_role("alert")).to_contain_text(
        f"Relationship broken: this site's role is now none. primary at 127.0.0.1:"
        f"{primary.port} has left the relationship too.",
        timeout=PEER_WAIT_MS,
    )
    expect(role_badge(page)).to_have_text("None")
    expect(page.get_by_test_id("establish-form")).to_be_visible()
    assert backup.status()["role"] == "none"
    assert primary.status()["role"] == "none"


def test_breaking_from_the_primarys_failover_page_returns_both_sites_to_none(
    new_page, primary, backup
):
    establish(primary, backup)
    page = new_page()
    open_failover(page, primary)

    break_relationship(page)
    expect(page.get_by_role("alert")).to_contain_text(
        f"backup at 127.0.0.1:{backup.port} has left the relationship too.",
        timeout=PEER_WAIT_MS,
    )
    expect(role_badge(page)).to_have_text("None")
    assert primary.status()["role"] == "none"
    assert backup.status()["role"] == "none"


def test_breaking_with_the_backup_stopped_needs_force(new_page, primary, backup):
    establish(primary, backup)
    backup.stop()
    page = new_page()
    open_failover(page, primary)

    break_relationship(page)
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text(
        f"Could not tell backup at 127.0.0.1:{backup.port} to break the relationship",
        timeout=PEER_WAIT_MS,
    )
    expect(refusal).to_contain_text("Use Force to break it on this site alone.")
    expect(role_badge(page)).to_have_text("Primary")
    assert primary.status()["role"] == "primary"

    break_relationship(page, force=True)
    expect(page.get_by_role("alert")).to_contain_text(
        f"Relationship broken: this site's role is now none. backup at 127.0.0.1:{backup.port} "
        "could not be told",
        timeout=PEER_WAIT_MS,
    )
    expect(role_badge(page)).to_have_text("None")
    assert primary.status()["role"] == "none"

    backup.start()
    assert backup.status()["role"] == "backup"
    backup.manage("failover", "break", "--force")
    assert backup.status()["role"] == "none"


def test_a_backup_with_another_key_is_named_as_a_key_mismatch(new_page, primary, backup):
    backup.manage("failover", "set-key", stdin="a different key entirely, not shared\n")
    page = new_page()
    open_failover(page, primary)
    fill_establish_form(page, backup_port=backup.port, reverse_port=primary.port)
    expect(page.get_by_test_id("backup-fingerprint")).to_have_text(
        backup.certificate_fingerprint, timeout=PEER_WAIT_MS
    )
    page.get_by_role("button", name="Establish Relationship").click()

    form = page.get_by_test_id("establish-form")
    expect(form).to_contain_text(
        f"The peer at 127.0.0.1:{backup.port} refused our signature: key mismatch — save the "
        "same pre-shared key on both sites.",
        timeout=PEER_WAIT_MS,
    )
    expect(role_badge(page)).to_have_text("None")
    assert primary.status()["role"] == "none"
    assert backup.status()["role"] == "none"


def test_an_unreachable_backup_is_named_on_the_establish_form(new_page, primary):
    port = free_port()
    page = new_page()
    open_failover(page, primary)
    fill_establish_form(page, backup_port=port, reverse_port=primary.port)

    expect(page.get_by_test_id("establish-form")).to_contain_text(
        f"Could not reach 127.0.0.1:{port}: connection refused", timeout=PEER_WAIT_MS
    )
    expect(page.get_by_test_id("backup-fingerprint")).to_have_count(0)
    assert primary.status()["role"] == "none"


def test_the_force_label_of_break_relationship_ticks_its_own_box(new_page, primary, backup):
    establish(primary, backup)
    page = new_page()
    open_failover(page, primary)
    break_form = page.get_by_test_id("break-form")

    break_form.get_by_text("Force: break on this site even if the other site").click()
    expect(break_form.get_by_role("checkbox")).to_be_checked()
    expect(page.get_by_test_id("become-backup-form").get_by_role("checkbox")).not_to_be_checked()
