"""In a real browser: the Backup settings form, its Test button, Become Primary, conflicts.

Two real sites over TLS (gunicorn, Celery worker and beat, each with its own database
and Redis) talk signed HTTPS on loopback. The shared IP uses the recording driver: both
sites share this machine's loopback, so neither may touch a real interface; the Linux
driver is tested in tests/test_shared_ip_driver.py. Every connectivity test target is
on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_PASSWORD, log_in, reload, reload_until
from tests.certs import make_ca
from tests.sites import Site, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.processes]
KEY = "browser failover shared key 01"
SHARED = "198.51.100.50/24"
# A page whose request talks to the other site waits for it (each peer call has its own
# timeout of a few seconds; a loaded test machine adds to it).
PEER_WAIT_MS = 90_000
FAILOVER_FIELDS = (
    "automatic_failover",
    "poll_interval_seconds",
    "primary_timeout_seconds",
    "connectivity_test_ips",
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("ca"))


def start_pair(base, ca, *, shared_ip: bool) -> tuple[Site, Site]:
    """Two sites over TLS, paired (the backup's certificate pinned), after the first sync."""
    sites = []
    try:
        for name in ("primary", "backup"):
            site = Site(
                name, base, ca=ca, PEER_CHECK_SECONDS="2", PEER_CA_BUNDLE="",
                SHARED_IP_DRIVER="recording",
            )  # fmt: skip
            site.prepare(
                key=KEY, admin_password=ADMIN_PASSWORD, shared_ip=SHARED if shared_ip else None
            )
            sites.append(site.start())
        primary, backup = sites
        primary.manage(
            "failover", "establish",
            "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
            "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
            "--backup-fingerprint", backup.certificate_fingerprint,
        )  # fmt: skip
        # The first sync replaces the backup's accounts (ending any session there).
        assert wait_until(
            lambda: (backup.status()["last_sync"] or {}).get("status") == "succeeded", timeout=180
        ), backup.log("worker.log")
    except BaseException:
        for site in sites:
            site.destroy()
        raise
    return primary, backup


@pytest.fixture(scope="module")
def settings_pair(tmp_path_factory, ca):
    """One pair for the tests that only edit settings; each test puts them back."""
    primary, backup = start_pair(tmp_path_factory.mktemp("settings-pair"), ca, shared_ip=False)
    yield primary, backup
    for site in (primary, backup):
        site.destroy()


@pytest.fixture
def pair(settings_pair):
    """The shared pair; afterwards, a site whose settings the test changed gets them back."""
    saved = ("failover.backupsettings", "failover.sharedip")
    before = [site.dump(*saved) for site in settings_pair]
    yield settings_pair
    for site, settings in zip(settings_pair, before, strict=True):
        if site.dump(*saved) == settings:
            continue
        site.shell(
            "from failover.models import BackupSettings, SharedIP\n"
            "from failover import schedule\n"
            "BackupSettings.objects.all().delete(); SharedIP.objects.all().delete()\n"
            "schedule.apply(BackupSettings.load())"
        )


@pytest.fixture
def fresh_pair(tmp_path, ca):
    """A pair of its own, with the shared IP enabled on both, for tests that change roles."""
    primary, backup = start_pair(tmp_path, ca, shared_ip=True)
    yield primary, backup
    for site in (primary, backup):
        site.destroy()


@pytest.fixture(scope="module")
def conflict_pair(tmp_path_factory, ca):
    """One pair for the conflict tests. Each makes the backup claim the primary role
    behind the primary's back, and each fixes it: the pair ends primary and backup again."""
    primary, backup = start_pair(tmp_path_factory.mktemp("conflict-pair"), ca, shared_ip=True)
    yield primary, backup
    for site in (primary, backup):
        site.destroy()


@pytest.fixture
def closed_port():
    """127.0.0.1:<port> that refuses connections: bound (so no one else takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def open_failover(page, site: Site) -> None:
    log_in(page, site)
    expect(page).to_have_url(site.url + "/status/")
    page.goto(site.url + "/management/failover/")
    expect(page.get_by_role("heading", name="Management · Failover")).to_be_visible()


def failover_settings(site: Site) -> dict:
    """What the site has saved for automatic failover, read from its database (the
    model's defaults while nothing is saved, as `BackupSettings.load()` gives them)."""
    from failover.models import BackupSettings

    saved = site.dump("failover.backupsettings")
    values = saved[0]["fields"] if saved else {}
    return {
        name: values.get(name, BackupSettings._meta.get_field(name).get_default())
        for name in FAILOVER_FIELDS
    }


def holds(site: Site) -> bool:
    """Whether the site holds the shared address: the recording driver's file, which
    holds only the one address both sites share."""
    return bool(site.recorded_shared_ips())


def settings_form(page):
    return page.get_by_test_id("backup-settings-form")


def save_shared_ip(page) -> None:
    form = page.get_by_test_id("shared-ip-form")
    form.get_by_label("Shared IP").check()
    form.get_by_label("IPv4 address").fill(SHARED)
    form.get_by_label("Interface").fill("lo")
    form.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_role("alert")).to_contain_text(
        f"Shared IP {SHARED} enabled.", timeout=PEER_WAIT_MS
    )


# The Backup settings form -----------------------------------------------------------------


def test_bad_failover_settings_show_what_is_wrong_and_change_nothing(new_page, pair):
    primary, backup = pair
    before = failover_settings(primary), failover_settings(backup)
    page = new_page()
    open_failover(page, primary)
    form = settings_form(page)

    form.get_by_label("Poll interval (seconds)").fill("0")
    form.get_by_label("Network Connectivity Test IPs").fill(
        "127.0.0.1\nnot-an-address\n127.0.0.1:99999"
    )
    form.get_by_role("button", name="Save Changes").click()

    expect(form).to_contain_text("Poll every 1 to 3600 seconds.")
    expect(form).to_contain_text(
        "Not an IP address or address:port: not-an-address, 127.0.0.1:99999. Enter one per line, "
        "e.g. 198.51.100.1 or 203.0.113.9:443."
    )
    expect(page.get_by_role("alert")).to_have_count(0)
    # What was typed stays in the form to be corrected.
    expect(form.get_by_label("Poll interval (seconds)")).to_have_value("0")
    assert (failover_settings(primary), failover_settings(backup)) == before


def test_the_browser_refuses_a_timeout_outside_the_allowed_range(new_page, pair):
    primary, _backup = pair
    before = failover_settings(primary)
    page = new_page()
    open_failover(page, primary)
    form = settings_form(page)
    timeout = form.get_by_label("Primary Site Instance Timeout (seconds)")

    timeout.fill("90000")
    form.get_by_role("button", name="Save Changes").click()

    message = timeout.evaluate("input => input.validationMessage")
    assert "86400" in message, message
    expect(page.get_by_role("alert")).to_have_count(0)
    assert failover_settings(primary) == before


def test_automatic_failover_without_a_way_to_move_the_service_is_refused_with_the_reason(
    new_page, pair
):
    primary, backup = pair
    before = failover_settings(primary), failover_settings(backup)
    page = new_page()
    open_failover(page, primary)
    form = settings_form(page)

    form.get_by_label("Enable Automatic Failover").check()
    form.get_by_label("Network Connectivity Test IPs").fill("127.0.0.1")
    form.get_by_role("button", name="Save Changes").click()

    expect(form).to_contain_text(
        "Automatic failover does not work without a way to point clients at the new primary: "
        "enable the shared IP (address and interface) on both sites first, or a DNS swing, or "
        "install takeover hooks."
    )
    expect(page.get_by_role("alert")).to_have_count(0)
    assert (failover_settings(primary), failover_settings(backup)) == before
    assert not before[0]["automatic_failover"]


def test_failover_settings_are_saved_kept_and_handed_to_the_other_site(new_page, pair, closed_port):
    primary, backup = pair
    backup_page = new_page()
    open_failover(backup_page, backup)
    save_shared_ip(backup_page)
    page = new_page()
    open_failover(page, primary)
    save_shared_ip(page)
    form = settings_form(page)
    timeout = form.get_by_label("Primary Site Instance Timeout (seconds)")
    presets = page.locator("#" + timeout.get_attribute("list") + " option")
    expect(presets).to_have_count(8)
    assert presets.first.get_attribute("value") == "10"
    assert presets.last.get_attribute("value") == "3600"

    form.get_by_label("Enable Automatic Failover").check()
    form.get_by_label("Poll interval (seconds)").fill("2")
    timeout.fill("60")  # the "1 minute" preset
    targets = f"127.0.0.1\n127.0.0.1:{closed_port}"
    form.get_by_label("Network Connectivity Test IPs").fill(targets)
    form.get_by_role("button", name="Save Changes").click()

    expect(page.get_by_role("alert")).to_contain_text(
        "Backup settings saved: sync continuously. backup has them too.", timeout=PEER_WAIT_MS
    )
    saved = {
        "automatic_failover": True,
        "poll_interval_seconds": 2,
        "primary_timeout_seconds": 60,
        "connectivity_test_ips": targets,
    }
    assert failover_settings(primary) == saved
    assert failover_settings(backup) == saved
    reload(page)
    form = settings_form(page)
    expect(form.get_by_label("Enable Automatic Failover")).to_be_checked()
    expect(form.get_by_label("Poll interval (seconds)")).to_have_value("2")
    expect(form.get_by_label("Primary Site Instance Timeout (seconds)")).to_have_value("60")
    expect(form.get_by_label("Network Connectivity Test IPs")).to_have_value(targets)

    # A value in seconds that is no preset, saved on the backup, reaches the primary.
    reload(backup_page)
    backup_form = settings_form(backup_page)
    expect(backup_form.get_by_label("Primary Site Instance Timeout (seconds)")).to_have_value("60")
    backup_form.get_by_label("Primary Site Instance Timeout (seconds)").fill("7")
    backup_form.get_by_role("button", name="Save Changes").click()
    expect(backup_page.get_by_role("alert")).to_contain_text(
        "primary has them too.", timeout=PEER_WAIT_MS
    )
    assert failover_settings(primary)["primary_timeout_seconds"] == 7
    assert failover_settings(backup) == {**saved, "primary_timeout_seconds": 7}


# The Test button ---------------------------------------------------------------------------


def test_the_test_button_shows_each_addresss_result_and_round_trip_time(
    new_page, pair, closed_port
):
    primary, backup = pair
    page = new_page()
    open_failover(page, backup)
    form = settings_form(page)
    targets = f"127.0.0.1\n127.0.0.1:{closed_port}\n127.0.0.1:{backup.port}"
    form.get_by_label("Network Connectivity Test IPs").fill(targets)

    form.get_by_role("button", name="Test").click()

    rows = page.get_by_test_id("connectivity-results").locator("tbody tr")
    expect(rows).to_have_count(3)
    ping, refused, accepted = (rows.nth(i).locator("td") for i in range(3))
    expect(ping.nth(0)).to_have_text("127.0.0.1")
    expect(ping.nth(1)).to_have_text("reachable")
    expect(ping.nth(2)).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))
    expect(ping.nth(3)).to_have_text("answered ICMP echo")
    expect(refused.nth(0)).to_have_text(f"127.0.0.1:{closed_port}")
    expect(refused.nth(1)).to_have_text("unreachable")
    expect(refused.nth(2)).to_have_text("—")
    expect(refused.nth(3)).to_have_text("TCP connect failed: Connection refused")
    expect(accepted.nth(0)).to_have_text(f"127.0.0.1:{backup.port}")
    expect(accepted.nth(1)).to_have_text("reachable")
    expect(accepted.nth(2)).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))
    expect(accepted.nth(3)).to_have_text("accepted TCP")
    # Testing saves nothing, and the addresses stay in the form for Save Changes.
    expect(settings_form(page).get_by_label("Network Connectivity Test IPs")).to_have_value(targets)
    assert failover_settings(backup)["connectivity_test_ips"] == ""
    assert failover_settings(primary)["connectivity_test_ips"] == ""


def test_the_test_button_names_a_bad_address_and_tests_nothing(new_page, pair):
    _primary, backup = pair
    page = new_page()
    open_failover(page, backup)
    form = settings_form(page)
    form.get_by_label("Network Connectivity Test IPs").fill("127.0.0.1\n127.0.0.1:0")

    form.get_by_role("button", name="Test").click()

    expect(settings_form(page)).to_contain_text("Not an IP address or address:port: 127.0.0.1:0.")
    expect(page.get_by_test_id("connectivity-results")).to_have_count(0)


# Become Primary ---------------------------------------------------------------------------


def test_become_primary_with_a_final_sync_swaps_the_roles_on_both_sites(new_page, fresh_pair):
    primary, backup = fresh_pair
    assert wait_until(lambda: holds(primary), timeout=120)
    epoch = primary.status()["epoch"]
    # Written on the primary after the last sync: only the final sync brings them over.
    primary.manage("generate_reports", "25", "--seed", "7")
    page = new_page()
    open_failover(page, backup)
    expect(page.get_by_test_id("own-role")).to_have_text("Backup")
    form = page.get_by_test_id("become-primary-form")

    form.get_by_label("Pull a final data sync from the primary first").check()
    form.get_by_role("button", name="Become Primary").click()

    expect(page.get_by_role("alert")).to_contain_text(
        "Become Primary started: the primary pauses changes while the final sync runs."
    )
    assert wait_until(lambda: backup.status()["role"] == "primary", timeout=180), backup.log(
        "worker.log"
    )
    assert wait_until(lambda: primary.status()["role"] == "backup", timeout=120)
    assert backup.status()["epoch"] > epoch
    final_sync = backup.status()["last_sync"]
    assert (final_sync["trigger"], final_sync["status"]) == ("become_primary", "succeeded")
    assert backup.dump("appliance.report") == primary.dump("appliance.report")
    assert len(backup.dump("appliance.report")) == 25
    assert wait_until(lambda: holds(backup) and not holds(primary), timeout=120)

    reload_until(page, page.get_by_test_id("own-role"), "Primary", timeout=60)
    expect(page.get_by_role("navigation").get_by_test_id("role-badge")).to_have_text("Primary")
    expect(page.get_by_test_id("history")).to_contain_text(
        "backup became primary (was backup, epoch"
    )
    expect(page.get_by_test_id("history")).to_contain_text("after a final sync")
    expect(page.get_by_test_id("become-backup-form")).to_be_visible()
    reload_until(page, page.get_by_test_id("peer-role"), "Backup", timeout=60)

    old_primary = new_page()
    open_failover(old_primary, primary)
    expect(old_primary.get_by_test_id("own-role")).to_have_text("Backup")
    expect(old_primary.get_by_test_id("become-primary-form")).to_be_visible()


# Conflicts --------------------------------------------------------------------------------


def claim_primary_behind_the_peers_back(primary: Site, backup: Site, *, seed: int) -> None:
    """Both sites primary at the same epoch, as after a split brain the epochs cannot settle.

    The backup is stopped, made primary in its own database at the epoch it shares with
    the primary, given reports of its own (from `seed`), and started again: each site
    then sees the other claim the primary role.
    """
    assert wait_until(lambda: holds(primary), timeout=120)
    assert backup.status()["epoch"] == primary.status()["epoch"]
    backup.stop()
    backup.shell(
        "from failover.models import FailoverState\n"
        "FailoverState.objects.filter(pk=1).update(role='primary', peer_role='backup')\n"
        "from django.core.management import call_command\n"
        f"call_command('generate_reports', '3', '--seed', '{seed}')"
    )
    backup.start()


def exports(site: Site) -> set[str]:
    """The names of the exports the site has written."""
    folder = site.data_dir / "exports"
    return {path.name for path in folder.glob("*.json")} if folder.is_dir() else set()


def new_export(site: Site, before: set[str]) -> str:
    """The one export of the site's data written since `before`."""
    (name,) = (n for n in exports(site) - before if re.fullmatch(r"\d{8}-\d{6}-backup\.json", n))
    return name


def conflict_banner(page):
    return page.get_by_test_id("conflict-banner")


def wait_for_banner(page) -> None:
    reload_until(page, conflict_banner(page), "Both sites claim the same role", timeout=120)


def peer_check_after(site: Site, moment: dt.datetime) -> dt.datetime | None:
    """When the site last checked its peer, if that was after `moment`."""
    checked = site.status()["peer"]["last_check"]
    at = dt.datetime.fromisoformat(checked) if checked else None
    return at if at is not None and at > moment else None


def reports(site: Site) -> set[str]:
    return {row["pk"] for row in site.dump("appliance.report")}


def test_fix_this_error_on_the_winning_site_makes_the_other_backup_and_offers_its_export(
    new_page, conflict_pair
):
    primary, backup = conflict_pair
    claim_primary_behind_the_peers_back(primary, backup, seed=98)
    backup_reports = reports(backup)
    before = exports(backup)
    epoch = primary.status()["epoch"]
    page = new_page()
    open_failover(page, primary)
    wait_for_banner(page)
    banner = conflict_banner(page)
    expect(banner).to_contain_text(
        f"This site is primary (epoch {epoch}) and backup says it is primary (epoch {epoch})."
    )
    expect(banner).to_contain_text(
        "the site with the higher epoch is primary; at equal epochs, the site that holds the "
        "shared IP"
    )

    banner.get_by_role("button", name="Fix This Error").click()

    # Equal epochs: the primary holds the shared IP, so it stays primary.
    expect(page.get_by_role("alert")).to_contain_text(
        f"This site is primary (epoch {epoch + 1}); backup is backup.", timeout=PEER_WAIT_MS
    )
    fixed = dt.datetime.now(dt.UTC)
    expect(conflict_banner(page)).to_have_count(0)
    assert primary.status()["role"] == "primary"
    assert backup.status()["role"] == "backup"
    assert holds(primary) and not holds(backup)

    loser = new_page()
    open_failover(loser, backup)
    expect(conflict_banner(loser)).to_have_count(0)
    expect(loser.get_by_test_id("own-role")).to_have_text("Backup")
    export = loser.get_by_role("link", name=new_export(backup, before), exact=True)
    with loser.expect_download() as download:
        export.click()
    rows = json.loads(Path(download.value.path()).read_text())
    assert {row["pk"] for row in rows if row["model"] == "appliance.report"} == backup_reports
    assert len(backup_reports) == 3
    # The page that fixed it stays clear once the other site's role has been checked: by
    # a check begun after the fix, so after the check that ends after it.
    first = wait_until(lambda: peer_check_after(primary, fixed), timeout=120)
    assert first, primary.log("worker.log")
    assert wait_until(lambda: peer_check_after(primary, first), timeout=120)
    reload(page)
    expect(conflict_banner(page)).to_have_count(0)


def test_fix_this_error_on_the_losing_site_makes_it_backup_and_offers_its_own_export(
    new_page, conflict_pair
):
    primary, backup = conflict_pair
    claim_primary_behind_the_peers_back(primary, backup, seed=99)
    backup_reports = reports(backup)
    before = exports(backup)
    page = new_page()
    open_failover(page, backup)
    wait_for_banner(page)

    conflict_banner(page).get_by_role("button", name="Fix This Error").click()

    expect(page.get_by_role("alert")).to_contain_text(
        "primary is primary; this site is backup and its data was exported.",
        timeout=PEER_WAIT_MS,
    )
    expect(conflict_banner(page)).to_have_count(0)
    expect(page.get_by_test_id("own-role")).to_have_text("Backup")
    assert backup.status()["role"] == "backup"
    assert primary.status()["role"] == "primary"
    export = page.get_by_role("link", name=new_export(backup, before), exact=True)
    with page.expect_download() as download:
        export.click()
    rows = json.loads(Path(download.value.path()).read_text())
    assert {row["pk"] for row in rows if row["model"] == "appliance.report"} == backup_reports

    # The winner's banner goes once it has seen the other site step down.
    winner = new_page()
    open_failover(winner, primary)
    reload_until(winner, winner.get_by_test_id("peer-role"), "Backup", timeout=120)
    expect(conflict_banner(winner)).to_have_count(0)
    expect(winner.get_by_test_id("own-role")).to_have_text("Primary")
