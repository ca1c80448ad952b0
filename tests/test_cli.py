import io
import json

import pytest
from django.core.management import CommandError, call_command

from appliance.models import AuditEvent
from security import keys
from security.models import PreSharedKey

pytestmark = pytest.mark.django_db
KEY = "a long shared passphrase 1234"


def run(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        call_command("failover", *args, stdout=out)
    return out.getvalue()


def test_status_json_reports_site_role_key_and_processes():
    status = json.loads(run("status", "--json"))
    assert status["site"] == "test-site"
    assert status["role"] == "none"
    assert status["epoch"] == 0
    assert status["key_fingerprint"] is None
    assert set(status["processes"]) == {"worker", "beat", "network"}
    assert status["processes"]["worker"]["alive"] is False


def test_status_text_says_when_no_key_is_set():
    text = run("status")
    assert "Key:           not set" in text
    assert "Worker:        DOWN" in text


def test_set_key_reads_standard_input_and_prints_the_fingerprint():
    output = run("set-key", stdin=KEY + "\n")
    assert keys.fingerprint(KEY) in output
    assert KEY not in output
    assert PreSharedKey.current().reveal() == KEY
    assert json.loads(run("status", "--json"))["key_fingerprint"] == keys.fingerprint(KEY)
    assert AuditEvent.objects.get(action="security.key_changed").actor == "cli"


def test_set_key_refuses_a_short_key_and_saves_nothing():
    with pytest.raises(CommandError, match="use at least 16"):
        run("set-key", stdin="short\n")
    assert PreSharedKey.current() is None


def test_ensureadmin_creates_an_administrator_who_can_log_in(client, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a good long password 99\n"))
    call_command("ensureadmin", "root-admin", stdout=io.StringIO())
    response = client.post(
        "/login", {"username": "root-admin", "password": "a good long password 99"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/status/"


def test_start_check_on_a_site_that_is_not_primary_says_so_and_changes_nothing():
    assert run("start-check") == "Starting as none (epoch 0).\n"


# configure: the backup settings from a script, checked as the page checks them


def test_configure_switches_to_synchronous_continuous_replication():
    from failover.models import BackupSettings

    said = run("configure", "--sync-interval", "continuous", "--replication", "synchronous",
               "--synchronous-timeout", "5")  # fmt: skip
    assert "Backup settings saved: sync continuously (synchronous)." in said
    saved = BackupSettings.load()
    assert (saved.sync_interval, saved.synchronous_replication) == ("continuous", True)
    assert saved.synchronous_timeout_seconds == 5
    assert AuditEvent.objects.filter(action="failover.backup_settings").exists()


def test_configure_sets_a_weekly_schedule_and_keeps_what_it_was_not_given():
    from failover.models import BackupSettings

    run("configure", "--bandwidth-limit", "2000000")
    said = run("configure", "--sync-interval", "weekly", "--weekday", "wednesday", "--at", "23:15")
    assert "every Wednesday at 23:15" in said
    saved = BackupSettings.load()
    assert (saved.sync_weekday, saved.bandwidth_limit) == (2, 2_000_000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--sync-interval", "hourly", "--replication", "synchronous"),
            "Synchronous replication needs the sync interval Continuously",
        ),
        (("--synchronous-timeout", "0"), "from 1 to 60"),
        (("--sync-interval", "hours", "--every-hours", "30"), "from 2 to 23"),
        (("--bandwidth-limit", "12345"), "Select a valid choice"),
    ],
)
def test_configure_refuses_what_the_page_refuses_and_changes_nothing(args, message):
    from failover.models import BackupSettings

    before = BackupSettings.load().updated_at
    with pytest.raises(CommandError, match=message) as refused:
        run("configure", *args)
    assert str(refused.value).startswith("Nothing was changed.")
    assert BackupSettings.load().updated_at == before


def test_status_tells_the_replication_lag():
    from failover.models import BackupSettings, Role
    from tests.conftest import paired_as

    paired_as(Role.BACKUP)
    BackupSettings.load().save()
    text = run("status")
    assert "Replication:   not known yet" in text
    assert json.loads(run("status", "--json"))["replication"]["following"] is True
