"""The seed from start to end in a real browser, on the namespace lab's two sites.

Chromium runs inside the lab's client namespace (a wrapper script starts it under
`ip netns exec`; Playwright drives it over a pipe, which crosses the namespace), so
every packet it sends to 10.231.0.0/24 leaves from the client's own interface. It
trusts no certificate authority for the lab: it accepts only the two sites' own
public keys (`--ignore-certificate-errors-spki-list`), the way the sites pin each
other.

Each step is checked on the page and on the sites' real state: their databases
(`failover status`, the stored role), and the kernel's addresses for the shared IP.
The browser also logs in at the shared address itself, before and after the
failover, and finds the primary there, then the backup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import expect

from security import keys
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    page_opener,
    reload,
    reload_until,
    require_chromium,
)
from tests.lab import ADMIN_PASSWORD, KEY, SHARED, SHARED_IP, SITES, Lab, address
from tests.lab_fixtures import require_lab
from tests.sites import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.processes, pytest.mark.lab]
# A page whose request talks to the other site waits for it; the lab machine is shared
# with other tests, so be generous (every wait here is still bounded).
PEER_WAIT_MS = 120_000
POLL, TIMEOUT = 1, 3
FAILOVER_FIELDS = (
    "automatic_failover",
    "poll_interval_seconds",
    "primary_timeout_seconds",
    "connectivity_test_ips",
)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Both sites running in the lab, unpaired, without a key or a shared IP."""
    require_lab()
    require_chromium()
    with Lab(tmp_path / "lab") as built:
        built.up(pair=False)
        # The lab configures the shared IP for its own tests; this walk-through sets it
        # from the Failover page instead, as an administrator would.
        for site in built.sites.values():
            site.shell("from failover.models import SharedIP\nSharedIP.objects.all().delete()")
        yield built


def public_key_pin(cert_path: str) -> str:
    """Chromium's form of a pin: base64 of the SHA-256 of the SubjectPublicKeyInfo."""
    certificate = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    info = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(info).digest()).decode()


@pytest.fixture
def client_browser(lab: Lab, tmp_path: Path) -> Iterator[object]:
    """Chromium inside the client namespace, accepting only the two sites' certificates."""
    from playwright.sync_api import sync_playwright

    wrapper = tmp_path / "chromium-in-client"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {lab.spaces["client"]} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    pins = ",".join(public_key_pin(site.env["TLS_CERTFILE"]) for site in lab.sites.values())
    args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pins}"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(wrapper), args=args, timeout=120_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(client_browser: object) -> Iterator[object]:
    """Open a page in a fresh browser context (its own cookies, so its own session)."""
    with page_opener(client_browser, 30_000) as open_page:
        yield open_page


def log_in(page, site: str) -> None:
    """Log in as the administrator at a site's own address, or at the shared one."""
    host = SHARED_IP if site == "shared" else address(site)
    page.goto(f"https://{host}/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"https://{host}/status/")


def open_management(page, name: str) -> None:
    page.get_by_role("button", name="Management").click()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=f"Management · {name}")).to_be_visible()


def brand(page):
    """The navbar's appliance name (with the role badge)."""
    return page.get_by_role("navigation").locator(".navbar-brand")


def role_badge(page):
    return page.get_by_role("navigation").get_by_test_id("role-badge")


def alert(page):
    return page.get_by_role("alert")


def failover_settings(lab: Lab, site: str) -> dict:
    """What the site has saved for automatic failover, read from its database."""
    return json.loads(
        lab.sites[site].shell(
            "import json\nfrom failover.models import BackupSettings\n"
            "s = BackupSettings.load()\n"
            f"print(json.dumps({{f: getattr(s, f) for f in {FAILOVER_FIELDS!r}}}))"
        )
    )


def paired(lab: Lab, site: str) -> bool:
    """Whether the site's database gives it a role (read directly: fast enough to repeat)."""
    return lab.stored_role(site)[0] in ("primary", "backup")


def set_key(page, lab: Lab, site: str) -> None:
    log_in(page, site)
    expect(role_badge(page)).to_have_text("None")
    open_management(page, "Security")
    expect(page.get_by_test_id("no-key")).to_be_visible()
    page.get_by_label("Inter-appliance Communication Pre-shared Key").fill(KEY)
    page.get_by_label("Confirm the key").fill(KEY)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("fingerprint")).to_have_text(keys.fingerprint(KEY))
    assert lab.sites[site].status()["key_fingerprint"] == keys.fingerprint(KEY)


def save_shared_ip(page) -> None:
    form = page.get_by_test_id("shared-ip-form")
    form.get_by_label("Shared IP").check()
    form.get_by_label("IPv4 address").fill(SHARED)
    form.get_by_label("Interface").fill("eth0")
    form.get_by_role("button", name="Save Changes").click()
    expect(alert(page)).to_contain_text(f"Shared IP {SHARED} enabled.", timeout=PEER_WAIT_MS)


def test_the_seed_from_start_to_end_in_a_browser_on_the_lab(lab, new_page):
    primary_page, backup_page = new_page(), new_page()
    for site in SITES:
        status = lab.sites[site].status()
        assert (status["role"], status["key_fingerprint"]) == ("none", None)
    assert lab.holders() == set()

    # 1-2. Log in to each site as an administrator and save the same key on both.
    set_key(primary_page, lab, "primary")
    set_key(backup_page, lab, "backup")

    # 3. Establish from the primary: the backup's certificate first, then the pair.
    open_management(primary_page, "Failover")
    backup_details = primary_page.get_by_role("group", name="New Backup Site Connection Details")
    backup_details.get_by_label("Host name or IP address").fill(address("backup"))
    backup_details.get_by_label("TLS port").fill("443")
    reverse = primary_page.get_by_role(
        "group", name="Reverse Connection Details to this Primary Site"
    )
    reverse.get_by_label("Host name or IP address of this site").fill(address("primary"))
    reverse.get_by_label("TLS port of this site").fill("443")
    primary_page.get_by_role("button", name="Establish Relationship").click()
    expect(
        primary_page.get_by_role("heading", name="Check the backup's certificate")
    ).to_be_visible(timeout=PEER_WAIT_MS)
    fingerprint = lab.sites["backup"].certificate_fingerprint
    expect(primary_page.get_by_test_id("backup-fingerprint")).to_have_text(fingerprint)
    assert not any(paired(lab, site) for site in SITES), "paired before the confirmation"
    primary_page.get_by_role("button", name="Establish Relationship").click()
    expect(alert(primary_page)).to_contain_text(
        f"Relationship established: this site is primary, backup at {address('backup')}:443 "
        "is backup.",
        timeout=PEER_WAIT_MS,
    )
    expect(role_badge(primary_page)).to_have_text("Primary")
    expect(primary_page.get_by_test_id("peer-role")).to_have_text("Backup")
    expect(primary_page.get_by_test_id("peer-fingerprint")).to_have_text(fingerprint)
    assert lab.stored_role("primary")[0] == "primary"
    assert lab.stored_role("backup")[0] == "backup"

    # 4. The first sync: the primary's page learns its result from the backup, and the
    # backup's page (a new login: the sync replaced its accounts) shows it in the history.
    synced = primary_page.locator("p", has_text="Last sync on the backup:")
    reload_until(primary_page, synced, "succeeded")
    last_sync = lab.sites["backup"].status()["last_sync"]
    assert (last_sync["status"], last_sync["trigger"]) == ("succeeded", "established")
    log_in(backup_page, "backup")
    expect(role_badge(backup_page)).to_have_text("Backup")
    for tab in ("Users", "Reports", "Configuration"):
        expect(backup_page.get_by_role("navigation").get_by_role("link", name=tab)).to_have_count(0)
    open_management(backup_page, "Failover")
    expect(backup_page.get_by_test_id("own-role")).to_have_text("Backup")
    expect(backup_page.get_by_test_id("last-sync-status")).to_have_text("Succeeded")
    first_run = backup_page.get_by_test_id("sync-history").get_by_test_id("sync-row").first
    expect(first_run).to_contain_text(f"#{last_sync['id']}")
    expect(first_run).to_contain_text("Succeeded")
    expect(first_run).to_contain_text("After Establish Relationship")

    # 5. The shared IP, saved on both sites: the primary takes the address, the backup not.
    save_shared_ip(primary_page)
    save_shared_ip(backup_page)
    assert wait_until(lambda: lab.holders() == {"primary"}, timeout=120), lab.holders()
    reload_until(primary_page, primary_page.get_by_test_id("holds-shared-ip"), "holds")
    expect(primary_page.get_by_test_id("holds-shared-ip")).to_have_text("holds")
    reload(backup_page)
    expect(backup_page.get_by_test_id("holds-shared-ip")).to_have_text("does not hold")
    on_shared = new_page()
    log_in(on_shared, "shared")
    expect(brand(on_shared)).to_contain_text("primary")
    expect(role_badge(on_shared)).to_have_text("Primary")

    # 6. Automatic failover on the backup's page: test the address, then save.
    form = backup_page.get_by_test_id("backup-settings-form")
    expect(form.get_by_label("Enable Backup Operations")).to_be_checked()
    form.get_by_label("Enable Automatic Failover").check()
    form.get_by_label("Poll interval (seconds)").fill(str(POLL))
    form.get_by_label("Primary Site Instance Timeout (seconds)").fill(str(TIMEOUT))
    form.get_by_label("Network Connectivity Test IPs").fill(address("outside"))
    form.get_by_role("button", name="Test").click()
    rows = backup_page.get_by_test_id("connectivity-results").locator("tbody tr")
    expect(rows).to_have_count(1, timeout=PEER_WAIT_MS)
    cells = rows.first.locator("td")
    expect(cells.nth(0)).to_have_text(address("outside"))
    expect(cells.nth(1)).to_have_text("reachable")
    expect(cells.nth(2)).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))
    expect(cells.nth(3)).to_have_text("answered ICMP echo")
    form = backup_page.get_by_test_id("backup-settings-form")
    expect(form.get_by_label("Enable Automatic Failover")).to_be_checked()
    form.get_by_role("button", name="Save Changes").click()
    expect(alert(backup_page)).to_contain_text(
        "Backup settings saved: sync continuously. primary has them too.", timeout=PEER_WAIT_MS
    )
    saved = {
        "automatic_failover": True,
        "poll_interval_seconds": POLL,
        "primary_timeout_seconds": TIMEOUT,
        "connectivity_test_ips": address("outside"),
    }
    assert failover_settings(lab, "backup") == saved
    assert failover_settings(lab, "primary") == saved

    # 7. The primary's machine dies: the backup's page shows it become primary.
    epoch = lab.stored_role("backup")[1]
    lab.power_off("primary")
    reload_until(backup_page, backup_page.get_by_test_id("own-role"), "Primary", timeout=180)
    expect(role_badge(backup_page)).to_have_text("Primary")
    expect(backup_page.get_by_test_id("history")).to_contain_text(
        "backup became primary (was backup, epoch"
    )
    assert lab.stored_role("backup")[0] == "primary"
    assert lab.stored_role("backup")[1] > epoch
    assert wait_until(lambda: lab.holders() == {"backup"}, timeout=120), lab.holders()
    reload_until(backup_page, backup_page.get_by_test_id("holds-shared-ip"), "holds")
    assert lab.sites["backup"].status()["role"] == "primary"
    # The support address now reaches the backup (a new login: sessions are per site).
    on_shared = new_page()
    log_in(on_shared, "shared")
    expect(brand(on_shared)).to_contain_text("backup")
    expect(role_badge(on_shared)).to_have_text("Primary")

    # 8. The old primary comes back as backup and leaves the address where it is.
    def backup_still_holds() -> None:
        assert lab.holders() == {"backup"}, "the old primary took the address on its return"

    lab.power_on("primary", wait=False)
    assert wait_until(
        lambda: backup_still_holds() or lab.sites["primary"].get("/login") == 200, timeout=120
    ), lab.sites["primary"].log()
    returned = new_page()
    log_in(returned, "primary")
    reload_until(returned, role_badge(returned), "Backup", timeout=120, also=backup_still_holds)
    open_management(returned, "Failover")
    expect(returned.get_by_test_id("own-role")).to_have_text("Backup")
    reload_until(returned, returned.get_by_test_id("peer-role"), "Primary", also=backup_still_holds)
    expect(returned.get_by_test_id("holds-shared-ip")).to_have_text("does not hold")
    assert lab.stored_role("primary")[0] == "backup"
    assert lab.stored_role("backup")[0] == "primary", "no automatic failback"
    assert lab.sites["primary"].status()["role"] == "backup"
    backup_still_holds()
