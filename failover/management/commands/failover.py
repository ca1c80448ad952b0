"""The operations CLI: `manage.py failover <subcommand>`, mirroring the Failover pages."""

from __future__ import annotations

import json
import sys
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.validators import validate_host
from failover import monitor, readiness, roles, services
from failover.models import BackupSettings, FailoverState, Role, SyncRun
from failover.peer import PeerError
from failover.status import site_status
from failover.system import probe
from security.services import set_key


class Command(BaseCommand):
    help = "Inspect and operate this site's failover relationship."
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
        sub.add_parser("test-connectivity", help="Test the Network Connectivity Test IPs now.")
        sub.add_parser(
            "start-check",
            help="Before the web starts: a returning primary whose peer took over becomes backup.",
        )
        check = sub.add_parser("check", help="Would failover work right now?")
        check.add_argument("--json", action="store_true")
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
        for name, process in status["processes"].items():
            state = "alive" if process["alive"] else "DOWN"
            self.stdout.write(f"{name.capitalize() + ':':<15}{state} ({process['detail']})")

    def handle_establish(self, options: dict) -> None:
        try:
            backup = services.PeerAddress(
                validate_host(options["backup_host"]),
                options["backup_port"],
                options["backup_fingerprint"],
            )
            reverse = services.PeerAddress(
                validate_host(options["reverse_host"]), options["reverse_port"]
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        needs_pin = services.peer_scheme() == "https" and not settings.PEER_CA_BUNDLE
        try:
            if needs_pin and not backup.fingerprint:
                presented = services.probe_certificate(backup)
                raise CommandError(
                    f"The backup at {backup.display} presents the certificate {presented}. "
                    "Check it, then run again with --backup-fingerprint to pin it."
                )
            state = services.establish(backup, reverse, "cli")
        except (services.RelationshipError, PeerError) as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Relationship established: this site is primary (epoch {state.epoch}), "
            f"{state.peer_name} at {state.peer_address} is backup."
        )

    def handle_break(self, options: dict) -> None:
        try:
            outcome = services.break_relationship("cli", force=options["force"])
        except services.RelationshipError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Relationship broken: this site's role is now none. {outcome}")

    def handle_sync_now(self, options: dict) -> None:
        try:
            sentence = services.sync_now("cli", full=options["full"], trigger=SyncRun.Trigger.CLI)
        except services.RelationshipError as error:
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
            self.stdout.write(roles.become_primary("cli", sync_first=options["sync_first"]))
        except roles.RoleError as error:
            raise CommandError(error.message) from None

    def handle_become_backup(self, options: dict) -> None:
        try:
            self.stdout.write(
                roles.become_backup("cli", force=options["force"], sync_first=options["sync_first"])
            )
        except roles.RoleError as error:
            raise CommandError(error.message) from None

    def handle_start_check(self, options: dict) -> None:
        try:
            said = roles.check_peer_on_start()
        except Exception as error:  # the site starts all the same, and says why it could not ask
            said = f"Could not ask the peer before starting: {error}"
        self.stdout.write(said)

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
