"""How reports look on the wire, and what a client must send to create one."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from appliance.models import AuditEvent, Report


@extend_schema_field(OpenApiTypes.BINARY)
class RecordingUploadField(serializers.FileField):
    """An uploaded file, described as binary in the schema (not as the URL DRF would show)."""


class ReportSerializer(serializers.ModelSerializer):
    """A report. The recording is uploaded as a file and downloaded from `recording_url`.

    The file's storage path is never shown: recordings are served only through
    an authenticated endpoint, not from a public media URL.
    """

    recording = RecordingUploadField(
        write_only=True,
        required=False,
        help_text="The session recording (multipart/form-data uploads only).",
    )
    has_recording = serializers.SerializerMethodField()
    recording_url = serializers.SerializerMethodField()
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "uuid",
            "representative",
            "customer_name",
            "computer_name",
            "started_at",
            "ended_at",
            "duration_seconds",
            "outcome",
            "chat_transcript",
            "recording",
            "has_recording",
            "recording_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["uuid", "created_at", "updated_at"]

    def get_has_recording(self, report: Report) -> bool:
        return bool(report.recording)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_recording_url(self, report: Report) -> str | None:
        if not report.recording:
            return None
        path = reverse("api:report-recording", kwargs={"uuid": report.uuid})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(serializers.IntegerField(allow_null=True, min_value=0))
    def get_duration_seconds(self, report: Report) -> int | None:
        duration = report.duration
        return None if duration is None else int(duration.total_seconds())

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        started_at, ended_at = attrs.get("started_at"), attrs.get("ended_at")
        if started_at and ended_at and ended_at < started_at:
            raise serializers.ValidationError(
                {
                    "ended_at": (
                        f"The session cannot end ({ended_at.isoformat()}) before it started "
                        f"({started_at.isoformat()}); check both times and their UTC offsets."
                    )
                }
            )
        return attrs


class AuditEventSerializer(serializers.ModelSerializer):
    """One entry of the audit trail: who (`user`) did what (`action`), when, on which site."""

    user = serializers.CharField(source="actor", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "site", "user", "action", "detail"]
        read_only_fields = fields
