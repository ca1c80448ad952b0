"""How the health report looks as JSON."""

from __future__ import annotations

from rest_framework import serializers

from failover.health import NEVER_SYNCED, UNKNOWN_ROLE, UNKNOWN_SYNC
from failover.models import Role

ROLE_CHOICES = [*Role.choices, (UNKNOWN_ROLE, "Unknown (the database does not answer)")]
ROLE_VALUES = [value for value, _ in ROLE_CHOICES]


class ReplicationSerializer(serializers.Serializer):
    following = serializers.BooleanField(help_text="Continuous replication is on.")
    changes_behind = serializers.IntegerField(
        allow_null=True, help_text="Changes the backup has not applied; null when unknown."
    )
    seconds_behind = serializers.FloatField(
        allow_null=True, help_text="Age of the oldest change the backup has not applied."
    )
    last_contact = serializers.DateTimeField(
        allow_null=True, help_text="The last word between the sites about the log."
    )
    connected = serializers.BooleanField(help_text="The sites talked within the last half minute.")
    error = serializers.CharField(allow_blank=True, help_text="Why replication broke off, if so.")
    synchronous_suspended_since = serializers.DateTimeField(
        allow_null=True, help_text="Since when writes go on without the backup (synchronous mode)."
    )


class SiteHealthSerializer(serializers.Serializer):
    """The site's health: the same facts as the Command API's `check_health`, as JSON."""

    appliance_id = serializers.UUIDField(help_text="This site's GUID (APPLIANCE_ID).")
    appliance = serializers.CharField(help_text="This site's name (APPLIANCE_NAME).")
    version = serializers.CharField(help_text="The software version this site runs.")
    success = serializers.BooleanField(
        help_text="True when the database, the Celery worker and beat, and the broker all work."
    )
    error_message = serializers.CharField(
        allow_blank=True, help_text="Every failed check in sentences; empty when healthy."
    )
    errors = serializers.ListField(
        child=serializers.CharField(), help_text="The failed checks, one entry each."
    )
    failover_role = serializers.ChoiceField(
        choices=ROLE_CHOICES,
        help_text="This site's failover role.",
    )
    enabled_shared_ips = serializers.ListField(
        child=serializers.IPAddressField(), help_text="The shared IP addresses this site holds."
    )
    last_data_sync_time = serializers.DateTimeField(
        allow_null=True, help_text="When the last data sync ended; null when never."
    )
    last_data_sync_status = serializers.CharField(
        help_text=f"How the last data sync ended: `{NEVER_SYNCED}` when this site never synced, "
        f"`{UNKNOWN_SYNC}` when the database does not answer."
    )
    replication = ReplicationSerializer(
        allow_null=True,
        help_text="Continuous replication's lag; null when this site does not replicate.",
    )
