"""Data sync between two real sites: real workers on real Redis, signed HTTPS, real data."""

from __future__ import annotations

import hashlib
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.certs import make_ca
from tests.sites import Site, wait_until

pytestmark = [pytest.mark.processes, pytest.mark.database]
KEY = "sync test shared key 000001"
SYNCED = [
    "auth.group",
    "auth.user",
    "appliance.apitoken",
    "appliance.sitesettings",
    "appliance.report",
]
PASSWORD = "rita's long password 123"
# The API token the primary issued to its administrator `ops` (shown once).
ISSUED: dict[str, str] = {}


# The syncs on request and on a schedule (continuous replication has its own tests).
HOURLY = (
    "from failover.models import BackupSettings\n"
    "s = BackupSettings.load(); s.sync_interval = 'hourly'; s.save()\n"
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("sync")
    ca = make_ca(base)
    primary = Site("primary", base, ca=ca)
    backup = Site("backup", base, ca=ca)
    # The primary holds data before the relationship exists (the seed's advice), and an
    # administrator whose API token is shown once: only its digest is kept, and synced.
    primary.prepare(
        key=KEY,
        python=(
            "call_command('generate_reports', '300', '--seed', '3', '--with-recordings', '4')\n"
            "from django.contrib.auth.models import Group, Permission, User\n"
            "from appliance.models import SiteSettings\n"
            "group = Group.objects.create(name='Tier 2')\n"
            "group.permissions.add(Permission.objects.get(codename='view_report'))\n"
            "rita = User.objects.create_user('rita', 'rita@example.com', "
            f"{PASSWORD!r}, first_name='Rita')\n"
            "rita.groups.add(group)\n"
            "settings = SiteSettings.load(); settings.site_name = 'Acme Support'; settings.save()\n"
            "User.objects.create_superuser('ops', 'ops@example.com', 'ops long password 123')\n"
            + HOURLY
        ),
    )
    token = primary.manage("api_token", "ops").stdout.strip()
    backup.prepare(
        key=KEY,
        python=(
            "from appliance.models import Report\n"
            "Report.objects.create(representative='x', customer_name='stale', "
            "started_at='2020-01-01T00:00:00Z', outcome='resolved')\n" + HOURLY
        ),
    )
    for site in (primary, backup):
        site.start()
    primary.manage(
        "failover", "establish",
        "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
        "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
        "--backup-fingerprint", backup.certificate_fingerprint,
    )  # fmt: skip
    ISSUED["token"] = token
    yield primary, backup
    for site in (primary, backup):
        site.destroy()


def last_sync(site: Site) -> dict:
    return site.status()["last_sync"] or {}


def wait_for_sync(backup: Site, after: int = 0, timeout: float = 300) -> dict:
    def done():
        run = last_sync(backup)
        return (
            run if run.get("id", 0) > after and run["status"] in ("succeeded", "failed") else None
        )

    run = wait_until(done, timeout)
    assert run, f"no sync finished; last: {last_sync(backup)}\n{backup.log('worker.log')}"
    return run


def media_files(site: Site) -> dict[str, str]:
    media = site.data_dir / "media"
    return {
        str(path.relative_to(media)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in Path(media).rglob("*")
        if path.is_file()
    }


def test_the_first_sync_after_establishing_copies_everything(pair):
    primary, backup = pair
    run = wait_for_sync(backup)
    assert run["status"] == "succeeded", run["error"]
    assert run["trigger"] == "established"
    assert run["full"] is True
    assert backup.dump(*SYNCED) == primary.dump(*SYNCED)
    assert media_files(backup) == media_files(primary)
    assert len(media_files(backup)) == 4


def test_a_user_created_on_the_primary_logs_in_on_the_backup(pair):
    _primary, backup = pair
    wait_for_sync(backup)
    assert backup.login("rita", PASSWORD)
    assert not backup.login("rita", "not her password")


def api_status(site: Site, path: str, token: str) -> int:
    context = ssl.create_default_context(cafile=site.ca.cert_path)
    request = urllib.request.Request(  # noqa: S310 - the site's own https URL
        site.url + path, headers={"Authorization": f"Token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_an_api_token_is_kept_as_its_digest_and_works_on_the_backup_after_a_sync(pair):
    primary, backup = pair
    wait_for_sync(backup)
    token = ISSUED["token"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    for site in (primary, backup):
        assert site.rows("SELECT digest FROM appliance_apitoken") == [(digest,)]
        for database in site.data_dir.glob("db.sqlite3*"):  # with SQLite: its files
            assert token.encode() not in database.read_bytes(), f"the key is in {database}"
        assert api_status(site, "/api/v1/reports/", token) == 200
        assert api_status(site, "/api/v1/reports/", token[:-1] + "x") == 401


def test_an_incremental_sync_sends_only_creates_updates_and_deletes(pair):
    primary, backup = pair
    first = wait_for_sync(backup)
    primary.shell(
        "from django.contrib.auth.models import User\n"
        "from appliance.models import Report\n"
        "ids = list(Report.objects.order_by('id').values_list('id', flat=True)[:10])\n"
        "Report.objects.filter(id__in=ids[:5]).delete()\n"
        "for report in Report.objects.filter(id__in=ids[5:]):\n"
        "    report.outcome = 'escalated'; report.save()\n"
        "User.objects.create_user('sam', 'sam@example.com', 'sam long password 456')\n"
        "rita = User.objects.get(username='rita'); rita.last_name = 'Renamed'; rita.save()\n"
    )
    primary.manage("generate_reports", "7", "--seed", "99")
    backup.manage("failover", "sync-now", "--wait")
    run = last_sync(backup)
    assert run["status"] == "succeeded", run["error"]
    assert run["full"] is False
    # 5 deletes + 5 updates + 7 creates + 2 users.
    assert run["records"] == 19
    assert run["bytes"] < first["bytes"] / 10
    assert backup.dump(*SYNCED) == primary.dump(*SYNCED)


def test_sync_now_on_the_primary_asks_the_backup_to_pull(pair):
    primary, backup = pair
    before = wait_for_sync(backup)["id"]
    primary.shell(
        "from appliance.models import SiteSettings\n"
        "s = SiteSettings.load(); s.support_contact = 'help@example.com'; s.save()"
    )
    result = primary.manage("failover", "sync-now")
    assert "The backup backup: Sync #" in result.stdout
    run = wait_for_sync(backup, after=before)
    assert run["status"] == "succeeded"
    assert backup.dump("appliance.sitesettings") == primary.dump("appliance.sitesettings")


def test_a_sync_at_a_bandwidth_limit_cannot_finish_faster_than_the_limit(pair):
    _primary, backup = pair
    before = wait_for_sync(backup)["id"]
    backup.shell(
        "from failover.models import BackupSettings\n"
        "s = BackupSettings.load(); s.bandwidth_limit = 512_000; s.save()"
    )
    try:
        started = time.monotonic()
        backup.manage("failover", "sync-now", "--full", "--wait")
        elapsed = time.monotonic() - started
    finally:
        backup.shell(
            "from failover.models import BackupSettings\n"
            "s = BackupSettings.load(); s.bandwidth_limit = None; s.save()"
        )
    run = wait_for_sync(backup, after=before)
    assert run["status"] == "succeeded", run["error"]
    limit_bytes_per_second = 512_000 / 8
    burst = max(16 * 1024, limit_bytes_per_second / 4)
    assert run["bytes"] > 200_000
    assert elapsed >= (run["bytes"] - burst) / limit_bytes_per_second
