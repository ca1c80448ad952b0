"""The operations CLI: `manage.py failover <subcommand>`, mirroring the Failover pages."""

from __future__ import annotations

import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from failover.status import site_status
from security.services import set_key


class Command(BaseCommand):
    help = "Inspect and operate this site's failover relationship."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        status = sub.add_parser("status", help="Show this site's role, key and processes.")
        status.add_argument("--json", action="store_true", help="Print JSON for scripts.")
        sub.add_parser(
            "set-key",
            help="Set the inter-appliance pre-shared key, read from standard input.",
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
        for name, process in status["processes"].items():
            state = "alive" if process["alive"] else "DOWN"
            self.stdout.write(f"{name.capitalize() + ':':<15}{state} ({process['detail']})")

    def handle_set_key(self, options: dict) -> None:
        if sys.stdin.isatty():
            self.stderr.write("Type the pre-shared key and press Enter:")
        key = sys.stdin.readline().rstrip("\r\n")
        try:
            stored = set_key(key, "cli")
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Pre-shared key saved. Fingerprint: {stored.fingerprint}")
