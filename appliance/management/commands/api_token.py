"""`manage.py api_token <username>`: issue (or revoke) an administrator's API token."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.models import ApiToken


class Command(BaseCommand):
    help = (
        "Issue a new API token for a user (replacing the old one) and print it once; "
        "only its SHA-256 is kept. --revoke removes the user's token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--revoke", action="store_true", help="Remove the user's token.")

    def handle(self, *args: object, **options: object) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"There is no user named {options['username']!r}.")
        if options["revoke"]:
            deleted, _ = ApiToken.objects.filter(user=user).delete()
            self.stdout.write(
                f"{user.username}'s API token was revoked."
                if deleted
                else f"{user.username} had no API token."
            )
            return
        self.stdout.write(ApiToken.issue(user))
