"""The operations CLI: `manage.py failover <subcommand>`, mirroring the Failover pages."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from appliance.validators import validate_host
from appliance.version import SOFTWARE_VERSION
from failover import (
    backups,
    monitor,
    pair_settings,
    readiness,
    relationship,
    roles,
    schedule,
    switchover,
)
from failover.forms import BackupSettingsForm, FailoverSettingsForm, ScheduledBackupForm
from failover.models import (
    BANDWIDTH_STEPS,
    BackupSettings,
    FailoverState,
    Role,
    ScheduledBackup,
    SyncRun,
)
from failover.peer import PeerAddress, PeerError, peer_scheme
from failover.status import site_status
from failover.sync import runs
from failover.system import probe
from security.services import set_key


class Command(BaseCommand):
    help = "Inspect and operate this site's failover relationship."

    def get_version(self) -> str:
        """`failover --version`: this software's version (Django's own is `manage.py version`)."""
        return SOFTWARE_VERSION

    # Operations, often scripted: the deployment check (`manage.py check`) is not re-run
    # each time, which would import every view and URL for nothing.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        status = sub.add_parser("status", help="Show this site's role, key and processes.")
        status.add_argument("--json", action="store_true", help="Print JSON for scripts.")
        sub.add_parser(
            "set-key",
            help="Set the inter-appliance pre-shared key, read from standard input.",
        )
        establish = sub.add_parser(
            "establish", help="Make this site the primary and the given site its backup."
        )
        establish.add_argument("--backup-host", required=True)
        establish.add_argument("--backup-port", type=int, default=443)
        establish.add_argument("--reverse-host", required=True, help="How the backup reaches us.")
        establish.add_argument("--reverse-port", type=int, default=443)
        establish.add_argument(
            "--backup-fingerprint",
            default="",
            help="SHA-256 fingerprint of the backup's certificate to pin (shown when omitted).",
        )
        sync = sub.add_parser("sync-now", help="Start a data sync (on either site).")
        sync.add_argument("--full", action="store_true", help="Resend everything.")
        sync.add_argument(
            "--wait", action="store_true", help="On the backup: wait until the sync ends."
        )
        sync.add_argument("--timeout", type=int, default=900, help="Seconds --wait waits.")
        primary = sub.add_parser("become-primary", help="On the backup: become primary.")
        primary.add_argument(
            "--sync-first", action="store_true", help="Pull a final sync from the primary first."
        )
        backup = sub.add_parser("become-backup", help="On the primary: hand the role over.")
        backup.add_argument(
            "--force", action="store_true", help="Step down even if the peer cannot be reached."
        )
        backup.add_argument(
            "--sync-first", action="store_true", help="The other site pulls a final sync first."
        )
        configure = sub.add_parser(
            "configure",
            help="Change the backup settings, checked as the Failover page checks them, and "
            "hand them to the other site. Options left out keep their values.",
        )
        configure.add_argument(
            "--sync-interval",
            choices=[choice for choice, _ in BackupSettings.Interval.choices],
            help="continuous (the default for new pairs), or a schedule: 15min, hourly, hours "
            "(with --every-hours), daily (with --at), weekly (with --weekday and --at).",
        )
        configure.add_argument("--every-hours", type=int, metavar="N")
        configure.add_argument("--at", metavar="HH:MM", help="The time of a daily/weekly sync.")
        configure.add_argument(
            "--weekday", choices=[label.lower() for _, label in BackupSettings.Weekday.choices]
        )
        configure.add_argument(
            "--replication",
            choices=["synchronous", "asynchronous"],
            help="With --sync-interval continuous: synchronous acknowledges a write on the "
            "primary only once the backup has committed it.",
        )
        configure.add_argument(
            "--synchronous-timeout",
            type=int,
            metavar="SECONDS",
            help="How long a write waits for the backup before the primary goes on alone.",
        )
        configure.add_argument(
            "--bandwidth-limit",
            metavar="BITS",
            help="unlimited, or bits per second: "
            + ", ".join(str(bits) for bits in BANDWIDTH_STEPS),
        )
        configure.add_argument("--backup-operations", choices=["on", "off"])
        configure.add_argument("--automatic-failover", choices=["on", "off"])
        configure.add_argument("--poll-interval", type=int, metavar="SECONDS")
        configure.add_argument("--primary-timeout", type=int, metavar="SECONDS")
        configure.add_argument(
            "--test-ips", metavar="LIST", help="Network Connectivity Test IPs, comma-separated."
        )
        sub.add_parser("test-connectivity", help="Test the Network Connectivity Test IPs now.")
        sub.add_parser(
            "start-check",
            help="Before the web starts: a returning primary whose peer took over becomes backup.",
        )
        check = sub.add_parser("check", help="Would failover work right now?")
        check.add_argument("--json", action="store_true")
        backup = sub.add_parser(
            "backup",
            help="Write this site's data (settings, users, API accounts, reports, recordings) "
            "to one file, checked by its manifest. Not in it: the pre-shared key, the failover "
            "settings, the TLS material.",
        )
        backup.add_argument("file", help="The file to write (not replaced if it exists); - for "
                            "standard output.")  # fmt: skip
        daily = sub.add_parser(
            "backup-schedule",
            help="Turn on the daily backup of this site to a folder (or off, with --off), "
            "checked as Management > Backup checks it. Options left out keep their values. "
            "Not handed to the other site: each site backs itself up.",
        )
        daily.add_argument(
            "--folder", metavar="DIR", help="An existing folder the site's worker can write to."
        )
        daily.add_argument("--keep", metavar="N", help="How many backup files to keep (1-1000).")
        daily.add_argument("--at", metavar="HH:MM", help="The time of day, in the site's zone.")
        daily.add_argument(
            "--off", action="store_true", help="Turn the daily backup off (its settings stay)."
        )
        restore = sub.add_parser(
            "restore",
            help="Replace this site's data with a backup file, all or nothing. Refused on a "
            "paired site.",
        )
        restore.add_argument("file")
        sub.add_parser(
            "rekey",
            help="Agree a new random salt and key id for the pair's signing key with the peer.",
        )
        breaking = sub.add_parser("break", help="Break the relationship; both sites become none.")
        breaking.add_argument(
            "--force", action="store_true", help="Break here even if the peer cannot be told."
        )

    def handle(self, *args: object, **options: object) -> None:
        handler = getattr(self, "handle_" + str(options["subcommand"]).replace("-", "_"))
        handler(options)

    def handle_status(self, options: dict) -> None:
        status = site_status()
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2))
            return
        self.stdout.write(f"Site:          {status['site']}")
        self.stdout.write(f"Version:       {status['version']}")
        self.stdout.write(f"Role:          {status['role']} (epoch {status['epoch']})")
        self.stdout.write(f"Key:           {status['key_fingerprint'] or 'not set'}")
        if peer := status["peer"]:
            reachable = {True: "reachable", False: "UNREACHABLE", None: "not checked"}
            self.stdout.write(
                f"Peer:          {peer['name']} at {peer['address']}, {peer['role'] or '?'} "
                f"(epoch {peer['epoch']}), {reachable[peer['reachable']]}"
                f", last check {peer['last_check'] or 'never'}"
            )
        if sync := status["last_sync"]:
            self.stdout.write(
                f"Last sync:     #{sync['id']} {sync['status']}"
                f"{' (full)' if sync['full'] else ''}, {sync['records']} records, "
                f"{sync['bytes']} bytes, {sync['finished_at'] or 'not finished'}"
                f"{': ' + sync['error'] if sync['error'] else ''}"
            )
        if (lag := status["replication"]) and lag["following"]:
            self.stdout.write(f"Replication:   {describe_lag(lag)}")
        if scheduled := status["scheduled_backup"]:
            self.stdout.write(f"Backup:        {describe_scheduled_backup(scheduled)}")
        for name, process in status["processes"].items():
            state = "alive" if process["alive"] else "DOWN"
            self.stdout.write(f"{name.capitalize() + ':':<15}{state} ({process['detail']})")

    def handle_backup(self, options: dict) -> None:
        if options["file"] == "-":
            out = sys.stdout.buffer
            for piece in backups.Backup():
                out.write(piece)
            out.flush()
            return
        path = Path(options["file"])
        if path.exists():
            raise CommandError(f"{path} already exists: choose a new name (nothing was written).")
        try:
            summary = backups.write_backup(path)
        except FileExistsError:
            raise CommandError(
                f"{path} already exists: choose a new name (nothing was written)."
            ) from None
        except OSError as error:
            raise CommandError(
                f"Could not write {path}: {error.strerror or error}. Nothing was written."
            ) from None
        self.stdout.write(f"Backup written to {path} ({summary.size} bytes): {summary.describe()}.")

    def handle_backup_schedule(self, options: dict) -> None:
        current = ScheduledBackup.load()
        data: dict[str, object] = {
            "folder": current.folder,
            "keep": current.keep,
            "at": current.at.strftime("%H:%M"),
        }
        overrides = {"folder": options["folder"], "keep": options["keep"], "at": options["at"]}
        data.update({name: value for name, value in overrides.items() if value is not None})
        if not options["off"]:
            data["enabled"] = "on"  # an unchecked box is left out of a post
        form = ScheduledBackupForm(data, instance=current)
        if not form.is_valid():
            problems = [f"{name}: {' '.join(messages)}" for name, messages in form.errors.items()]
            raise CommandError("Nothing was changed. " + " ".join(problems))
        self.stdout.write(backups.save_schedule(form.instance, "cli"))

    def handle_restore(self, options: dict) -> None:
        try:
            summary = backups.restore(Path(options["file"]), actor="cli")
        except backups.RestoreRefused as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Restored {options['file']}, the backup of {summary.site} made {summary.created_at} "
            f"by version {summary.version}: {summary.describe()}. Everyone signs in again."
        )

    def handle_establish(self, options: dict) -> None:
        try:
            backup = PeerAddress(
                validate_host(options["backup_host"]),
                options["backup_port"],
                options["backup_fingerprint"],
            )
            reverse = PeerAddress(validate_host(options["reverse_host"]), options["reverse_port"])
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        needs_pin = peer_scheme() == "https" and not settings.PEER_CA_BUNDLE
        try:
            if needs_pin and not backup.fingerprint:
                presented = relationship.probe_certificate(backup)
                raise CommandError(
                    f"The backup at {backup.display} presents the certificate {presented}. "
                    "Check it, then run again with --backup-fingerprint to pin it."
                )
            state = relationship.establish(backup, reverse, "cli")
        except (relationship.RelationshipError, PeerError) as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Relationship established: this site is primary (epoch {state.epoch}), "
            f"{state.peer_name} at {state.peer_address} is backup."
        )

    def handle_break(self, options: dict) -> None:
        try:
            outcome = relationship.break_relationship("cli", force=options["force"])
        except relationship.RelationshipError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Relationship broken: this site's role is now none. {outcome}")

    def handle_rekey(self, options: dict) -> None:
        try:
            self.stdout.write(relationship.rekey("cli"))
        except relationship.RelationshipError as error:
            raise CommandError(error.message) from None

    def handle_sync_now(self, options: dict) -> None:
        try:
            sentence = runs.sync_now("cli", full=options["full"], trigger=SyncRun.Trigger.CLI)
        except runs.SyncRefused as error:
            raise CommandError(error.message) from None
        self.stdout.write(sentence)
        if not options["wait"]:
            return
        if FailoverState.load().role != Role.BACKUP:
            raise CommandError("--wait works on the backup, which runs the sync.")
        run = SyncRun.latest()
        deadline = time.monotonic() + options["timeout"]
        while run.is_active and time.monotonic() < deadline:
            time.sleep(0.5)
            run.refresh_from_db()
        if run.is_active:
            raise CommandError(
                f"Sync #{run.pk} is still {run.status} after {options['timeout']} s."
            )
        if run.status == SyncRun.Status.FAILED:
            raise CommandError(f"Sync #{run.pk} failed: {run.error}")
        self.stdout.write(
            f"Sync #{run.pk} succeeded: {run.records} records, {run.bytes} bytes, "
            f"{run.files} files{' (full)' if run.full else ''}."
        )

    def handle_become_primary(self, options: dict) -> None:
        try:
            with switchover.claimed("become_primary", "cli"):
                said = switchover.become_primary("cli", sync_first=options["sync_first"])
        except roles.RoleError as error:
            raise CommandError(error.message) from None
        self.stdout.write(said)

    def handle_become_backup(self, options: dict) -> None:
        try:
            with switchover.claimed("become_backup", "cli"):
                said = switchover.become_backup(
                    "cli", force=options["force"], sync_first=options["sync_first"]
                )
        except roles.RoleError as error:
            raise CommandError(error.message) from None
        self.stdout.write(said)

    def handle_start_check(self, options: dict) -> None:
        try:
            if recovered := backups.recover_at_start():
                self.stdout.write(recovered)
        except (OSError, DatabaseError) as error:
            self.stdout.write(f"Could not recover an interrupted restore: {error}")
        try:
            said = roles.check_peer_on_start()
        except Exception as error:  # the site starts all the same, and says why it could not ask
            said = f"Could not ask the peer before starting: {error}"
        self.stdout.write(said)

    def handle_configure(self, options: dict) -> None:
        current = BackupSettings.load()
        data = settings_form_data(current)
        overrides = {
            "sync_interval": options["sync_interval"],
            "sync_every_hours": options["every_hours"],
            "sync_time": options["at"],
            "synchronous_timeout_seconds": options["synchronous_timeout"],
            "poll_interval_seconds": options["poll_interval"],
            "primary_timeout_seconds": options["primary_timeout"],
        }
        data.update({name: value for name, value in overrides.items() if value is not None})
        if options["weekday"]:
            data["sync_weekday"] = next(
                value
                for value, label in BackupSettings.Weekday.choices
                if label.lower() == options["weekday"]
            )
        for option, field in (
            ("replication", "synchronous_replication"),
            ("backup_operations", "enable_backup_operations"),
            ("automatic_failover", "automatic_failover"),
        ):
            if options[option] is not None:
                data[field] = options[option] in ("synchronous", "on")
        if options["bandwidth_limit"] is not None:
            limit = options["bandwidth_limit"]
            data["bandwidth_limit"] = "" if limit == "unlimited" else limit
        if options["test_ips"] is not None:
            data["connectivity_test_ips"] = "\n".join(options["test_ips"].split(","))
        form = BackupSettingsForm(data, instance=current)
        failover_form = FailoverSettingsForm(data, instance=current)
        if not (form.is_valid() and failover_form.is_valid()):
            problems = [
                f"{name}: {' '.join(messages)}"
                for errors in (form.errors, failover_form.errors)
                for name, messages in errors.items()
            ]
            raise CommandError("Nothing was changed. " + " ".join(problems))
        peer_note = pair_settings.save_backup_settings(form.instance, "cli")
        self.stdout.write(f"Backup settings saved: sync {schedule.describe(form.instance)}.")
        if peer_note:
            self.stdout.write(peer_note)

    def handle_test_connectivity(self, options: dict) -> None:
        targets = monitor.test_targets(BackupSettings.load())
        if not targets:
            raise CommandError("No Network Connectivity Test IPs are configured.")
        results = probe.probe(targets)
        for result in results:
            state = "reachable" if result.reachable else "UNREACHABLE"
            rtt = f" {result.rtt_ms} ms" if result.rtt_ms is not None else ""
            self.stdout.write(f"{result.target!s:<24}{state}{rtt} ({result.detail})")
        if not any(result.reachable for result in results):
            raise CommandError("None of the test IPs answered: this site would not fail over.")

    def handle_check(self, options: dict) -> None:
        found = readiness.checks()
        if options["json"]:
            self.stdout.write(json.dumps([check.as_dict() for check in found], indent=2))
        else:
            for check in found:
                self.stdout.write(
                    f"{'ok  ' if check.ok else 'FAIL'} {check.name:<20}{check.detail}"
                )
        if not all(check.ok for check in found):
            raise CommandError("Failover would not work right now: see the failed checks.")

    def handle_set_key(self, options: dict) -> None:
        if sys.stdin.isatty():
            self.stderr.write("Type the pre-shared key and press Enter:")
        key = sys.stdin.readline().rstrip("\r\n")
        try:
            stored = set_key(key, "cli")
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Pre-shared key saved. Fingerprint: {stored.fingerprint}")


def describe_scheduled_backup(scheduled: dict) -> str:
    said = f"daily at {scheduled['at']} to {scheduled['folder']}, keeping {scheduled['keep']}"
    if scheduled["last_succeeded"] is None:
        return said + "; not run yet"
    if scheduled["last_succeeded"]:
        return said + f"; last {scheduled['last_file']} at {scheduled['last_finished_at']}"
    return said + f"; LAST FAILED at {scheduled['last_finished_at']}: {scheduled['last_error']}"


def describe_lag(lag: dict) -> str:
    """The replication lag in words, as `failover status` prints it."""
    behind, seconds = lag["changes_behind"], lag["seconds_behind"]
    if behind is None:
        return "not known yet" + (f" ({lag['error']})" if lag["error"] else "")
    if not lag["connected"]:
        return (
            f"NOT CONNECTED since {lag['last_contact'] or 'never'}, {behind} change(s) behind "
            f"when last heard{': ' + lag['error'] if lag['error'] else ''}"
        )
    suspended = lag["synchronous_suspended_since"]
    note = f"; synchronous replication SUSPENDED since {suspended}" if suspended else ""
    if behind == 0:
        return "in step" + note
    return f"{behind} change(s), {seconds:.1f} s behind{note}"


def settings_form_data(current: BackupSettings) -> dict[str, object]:
    """The saved backup settings as the Failover page's forms would post them."""
    data = {
        name: getattr(current, name)
        for name in (*BackupSettingsForm.Meta.fields, *FailoverSettingsForm.Meta.fields)
    }
    data["sync_time"] = current.sync_time.strftime("%H:%M")
    data["bandwidth_limit"] = current.bandwidth_limit or ""
    # Unchecked boxes are left out of a post.
    return {name: value for name, value in data.items() if value is not False}
