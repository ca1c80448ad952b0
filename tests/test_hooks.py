"""Takeover hooks: real programs in a folder, run on each role change in the right order.

The hooks here are shell scripts the test writes; they record what they were
told and whether the shared IP was held when they ran (the demo driver's
record, which the test reads too). The order is the promise: "primary" after
the site has claimed its addresses, "backup" before it releases them.
"""

from __future__ import annotations

import io
import json
import stat
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from failover import hooks, roles, takeover
from failover.models import BackupSettings, FailoverEvent, FailoverState, Role, SharedIP
from tests.conftest import paired_as
from tests.sites import wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("peer_redis")]
SHARED = "198.51.100.50/24"
SHARED6 = "2001:db8::50/64"


def write_hook(
    folder: Path, name: str, body: str, mode: int = 0o755, *, shebang: str = "/bin/sh"
) -> Path:
    path = folder / name
    path.write_text(f"#!{shebang}\n" + body)
    path.chmod(mode)
    return path


@pytest.fixture
def site(settings, tmp_path, monkeypatch):
    """A paired site with the demo driver, a shared IPv4 and IPv6 address, and a hooks folder."""
    settings.SHARED_IP_DRIVER = "recording"
    settings.DATA_DIR = tmp_path
    settings.FAILOVER_HOOKS_DIR = str(tmp_path / "hooks.d")
    settings.FAILOVER_HOOK_TIMEOUT_SECONDS = 10
    (tmp_path / "hooks.d").mkdir()
    (tmp_path / "hooks.d").chmod(0o755)
    monkeypatch.setattr("failover.jobs.announce_shared_ip", lambda **_: None)
    SharedIP(enabled=True, address=SHARED, address6=SHARED6, interface="eth0").save()
    return tmp_path


RECORDER = """import json, os, sys
try:
    held = {held!r} in open({record!r}).read()
except OSError:
    held = False
with open({log!r}, "a") as log:
    line = {{"args": " ".join(sys.argv[1:]), "held": held, "env": dict(os.environ)}}
    log.write(json.dumps(line) + "\\n")
"""


@pytest.fixture
def recorder(site) -> Path:
    """A hook that writes one JSON line per run: its arguments, its environment and whether
    the IPv4 shared address was held (per the demo driver's record) while it ran."""
    log = site / "runs.jsonl"
    body = RECORDER.format(
        held=f"{SHARED} on eth0", record=str(site / "shared-ip.json"), log=str(log)
    )
    write_hook(site / "hooks.d", "10-record", body, shebang=sys.executable)
    return log


def runs(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_new_primary_runs_its_hooks_after_claiming_its_addresses(site, recorder):
    state = paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    takeover.follow(peer_checked=True)
    [run] = runs(recorder)
    assert run["args"] == f"primary {state.epoch} {SHARED} {SHARED6}"
    assert run["held"] is True
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.HOOK)
    assert f"Hook 10-record (primary, epoch {state.epoch})" in event.message
    assert "exited with status 0" in event.message and not event.is_alerted


def test_a_site_that_steps_down_runs_its_hooks_before_releasing(site, recorder):
    state = paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    takeover.follow(peer_checked=True)
    roles.demote(state.epoch + 1, "the other site took over", "test")
    takeover.follow()
    backup = runs(recorder)[-1]
    assert backup["args"] == f"backup {state.epoch + 1} {SHARED} {SHARED6}"
    assert backup["held"] is True, "the backup hook ran after the address was released"
    assert f"{SHARED} on eth0" not in (site / "shared-ip.json").read_text()


def test_hooks_run_once_per_role_change_however_often_the_site_follows_its_role(site, recorder):
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    for _ in range(3):
        takeover.follow(peer_checked=True)
    assert len(runs(recorder)) == 1
    state = FailoverState.load()
    assert state.followed_epoch == state.epoch and not state.claim_follow_up()


def test_a_hook_is_told_the_role_epoch_and_addresses_and_nothing_of_the_site(
    site, recorder, monkeypatch
):
    monkeypatch.setenv("SITE_SECRET_MARKER", "must not reach a hook")
    state = paired_as(Role.PRIMARY, peer_name="site-b", peer_host="127.0.0.1")
    takeover.follow(peer_checked=True)
    env = runs(recorder)[0]["env"]
    assert env["FAILOVER_ROLE"] == "primary"
    assert env["FAILOVER_EPOCH"] == str(state.epoch)
    assert env["FAILOVER_ADDRESSES"] == f"{SHARED} {SHARED6}"
    assert env["FAILOVER_SHARED_IPV4"] == SHARED and env["FAILOVER_SHARED_IPV6"] == SHARED6
    assert env["FAILOVER_INTERFACE"] == "eth0" and env["FAILOVER_PEER"] == "site-b"
    assert "SITE_SECRET_MARKER" not in env and "SECRET_KEY" not in env
    assert "DATABASE_URL" not in env and "REDIS_URL" not in env


def test_a_failing_hook_is_recorded_with_its_status_and_output_and_alerted(site):
    write_hook(site / "hooks.d", "20-nat", "echo 'cannot reach the firewall' >&2\nexit 3\n")
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    [run] = hooks.run_for_role(FailoverState.load())
    assert (run.exit_status, run.output) == (3, "cannot reach the firewall")
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.HOOK_FAILED)
    assert "exited with status 3" in event.message
    assert "Output: cannot reach the firewall" in event.message
    assert event.is_alerted and event.severity == FailoverEvent.Severity.DANGER


def test_a_hook_that_outlives_its_timeout_is_killed_with_what_it_started(site, settings):
    settings.FAILOVER_HOOK_TIMEOUT_SECONDS = 1
    pid_file = site / "child.pid"
    write_hook(site / "hooks.d", "30-slow", f"sleep 300 &\necho $! > '{pid_file}'\nwait\n")
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    started = time.monotonic()
    [run] = hooks.run_for_role(FailoverState.load())
    assert run.timed_out and run.exit_status is None
    assert time.monotonic() - started < 60, "the hook was not stopped at its timeout"
    child = int(pid_file.read_text())

    def gone() -> bool:
        try:
            return Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
        except FileNotFoundError:
            return True

    assert wait_until(gone, 30), "the hook's own child outlived it"
    message = FailoverEvent.objects.get(kind=FailoverEvent.Kind.HOOK_FAILED).message
    assert "did not finish within 1 s (FAILOVER_HOOK_TIMEOUT_SECONDS) and was killed" in message


def test_a_hook_others_could_change_is_refused_and_alerted(site, recorder):
    (recorder.parent / "hooks.d" / "10-record").chmod(0o777)
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    assert hooks.run_for_role(FailoverState.load()) == []
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.HOOK_FAILED)
    assert "10-record is writable by its group or by others" in event.message
    assert event.is_alerted and runs(recorder) == []


def test_a_folder_others_could_change_runs_no_hook(site, recorder):
    (site / "hooks.d").chmod(0o777)
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    assert hooks.run_for_role(FailoverState.load()) == []
    assert "no hook runs" in FailoverEvent.objects.get(kind=FailoverEvent.Kind.HOOK_FAILED).message


def test_only_executable_files_with_plain_names_run_in_name_order(site):
    folder = site / "hooks.d"
    order = site / "order.txt"
    write_hook(folder, "20-second", f"echo second >> '{order}'\n")
    write_hook(folder, "10-first", f"echo first >> '{order}'\n")
    write_hook(folder, "30-disabled", f"echo disabled >> '{order}'\n", mode=0o644)
    write_hook(folder, "40-notes.txt", f"echo notes >> '{order}'\n")
    write_hook(folder, "50-backup~", f"echo backup >> '{order}'\n")
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    hooks.run_for_role(FailoverState.load())
    assert order.read_text().split() == ["first", "second"]
    described = hooks.describe()
    assert described["hooks"] == ["10-first", "20-second"]
    assert described["skipped"] == ["30-disabled"]


def test_without_a_hooks_folder_nothing_runs(site, settings):
    settings.FAILOVER_HOOKS_DIR = ""
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    assert hooks.run_for_role(FailoverState.load()) == []
    assert hooks.describe()["directory"] == ""


def test_a_missing_folder_is_reported(site, settings):
    settings.FAILOVER_HOOKS_DIR = str(site / "nowhere")
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    hooks.run_for_role(FailoverState.load())
    message = FailoverEvent.objects.get(kind=FailoverEvent.Kind.HOOK_FAILED).message
    assert f"{site / 'nowhere'} cannot be read: No such file or directory" in message


def test_the_hook_file_mode_check_reads_the_real_bits(site):
    path = write_hook(site / "hooks.d", "10-x", "true\n", mode=0o775)
    assert path.stat().st_mode & stat.S_IWGRP
    assert any("writable by its group" in problem for problem in hooks.describe()["refused"])


def test_failover_check_lists_the_hooks_and_names_a_refused_one(site, recorder):
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    out = io.StringIO()
    with pytest.raises(CommandError):  # the peer does not run
        call_command("failover", "check", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if " hooks " in line)
    assert line.startswith("ok") and "1 in" in line and "(10-record; timeout 10 s)" in line
    (site / "hooks.d" / "10-record").chmod(0o777)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("failover", "check", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if " hooks " in line)
    assert line.startswith("FAIL") and "10-record is writable by its group or by others" in line


AUTOMATIC = {
    "enable_backup_operations": "on",
    "bandwidth_limit": "",
    "sync_interval": "hourly",
    "automatic_failover": "on",
    "poll_interval_seconds": "10",
    "primary_timeout_seconds": "300",
    "connectivity_test_ips": "127.0.0.1",
}


def test_automatic_failover_may_rely_on_hooks_instead_of_a_shared_ip(site, admin_client):
    SharedIP.objects.all().delete()
    refused = admin_client.post(reverse("failover:backup_settings"), AUTOMATIC)
    assert refused.status_code == 400
    assert "without a way to point clients at the new primary" in refused.content.decode()
    write_hook(site / "hooks.d", "10-nat", "true\n")
    accepted = admin_client.post(reverse("failover:backup_settings"), AUTOMATIC)
    assert accepted.status_code == 302
    assert BackupSettings.load().automatic_failover
