"""Create or update an administrator account, the password read from standard input."""

import sys

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.models import AuditEvent


class Command(BaseCommand):
    help = "Create the administrator USERNAME, or reset its password (read from standard input)."
    # Operations, often scripted: the deployment check (`manage.py check`) is not re-run
    # each time, which would import every view and URL for nothing.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: object, **options: object) -> None:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 12:
            raise CommandError("Give a password of at least 12 characters on standard input.")
        user, created = User.objects.get_or_create(username=options["username"])
        user.is_superuser = user.is_staff = user.is_active = True
        user.set_password(password)
        user.save()
        AuditEvent.record(None, "user.created" if created else "user.password_set", user.username)
        self.stdout.write(f"Administrator {user.username} {'created' if created else 'updated'}.")
