"""The peer API: endpoints only the other site may call (signed requests, signed answers)."""

from __future__ import annotations

import redis
from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from appliance.models import Report
from failover import roles, services, tasks, writes
from failover.models import BackupSettings, FailoverState, Role, SyncRun
from failover.sync import stream
from security import signing
from security.peer_views import PeerAPIView


class EstablishSerializer(serializers.Serializer):
    primary_name = serializers.CharField(max_length=100)
    primary_host = serializers.CharField(max_length=253)
    primary_port = serializers.IntegerField(min_value=1, max_value=65535)
    primary_scheme = serializers.ChoiceField(choices=["https", "http"])
    primary_fingerprint = serializers.CharField(max_length=95, allow_blank=True)
    backup_host = serializers.CharField(max_length=253)
    backup_port = serializers.IntegerField(min_value=1, max_value=65535)
    epoch = serializers.IntegerField(min_value=1)
    version = serializers.CharField(max_length=50)


class BreakSerializer(serializers.Serializer):
    epoch = serializers.IntegerField(min_value=0)
    sender = serializers.CharField(max_length=100, required=False, source="from")


def refused(error: services.RelationshipError) -> Response:
    return Response(
        {"reason": error.reason, "detail": error.message}, status=status.HTTP_409_CONFLICT
    )


class HelloView(PeerAPIView):
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(services.identity())


class EstablishView(PeerAPIView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        payload = EstablishSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            services.accept_establish(payload.validated_data)
        except services.RelationshipError as error:
            return refused(error)
        return Response(services.identity(), status=status.HTTP_201_CREATED)


class BreakView(PeerAPIView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        BreakSerializer(data=request.data).is_valid(raise_exception=True)
        services.accept_break(request.data)
        return Response(services.identity())


class SyncChangesSerializer(serializers.Serializer):
    generation = serializers.UUIDField(allow_null=True)
    since = serializers.IntegerField(min_value=0, allow_null=True)
    full = serializers.BooleanField(default=False)


class SyncFileSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)


def _not_primary() -> Response:
    return Response(
        {
            "reason": "not_primary",
            "detail": "This site is not the primary: it has no data to send.",
        },
        status=status.HTTP_409_CONFLICT,
    )


class SyncChangesView(PeerAPIView):
    """The change set since the backup's cursor (or everything), as a sealed stream."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> HttpResponseBase:
        if FailoverState.load().role != Role.PRIMARY:
            return _not_primary()
        query = SyncChangesSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        plan = stream.Plan.make(
            str(data["generation"]) if data["generation"] else None, data["since"], data["full"]
        )
        seal_key = signing.stream_seal_key(request.auth.key, request.auth.nonce)
        return StreamingHttpResponse(
            stream.sealed_stream(plan, seal_key), content_type="application/x-ndjson"
        )


class SyncFileView(PeerAPIView):
    """One recording file, named by a report (its checksum travels in the change set)."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> HttpResponseBase:
        if FailoverState.load().role != Role.PRIMARY:
            return _not_primary()
        query = SyncFileSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        name = query.validated_data["name"]
        if not Report.objects.filter(recording=name).exists() or not default_storage.exists(name):
            return Response(
                {"reason": "no_such_file", "detail": f"No report holds the recording {name}."},
                status=status.HTTP_404_NOT_FOUND,
            )
        return FileResponse(
            default_storage.open(name, "rb"), content_type="application/octet-stream"
        )


class SyncRequestSerializer(serializers.Serializer):
    full = serializers.BooleanField(default=False)
    by = serializers.CharField(max_length=150, default="peer")
    trigger = serializers.ChoiceField(choices=SyncRun.Trigger.choices, default="manual")


class SyncRequestView(PeerAPIView):
    """The primary asks this backup to pull now (Sync Now on the primary's page)."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        payload = SyncRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            detail = services.accept_sync_request(payload.validated_data)
        except services.RelationshipError as error:
            return refused(error)
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


class BackupSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = BackupSettings
        fields = list(services.BACKUP_SETTINGS_FIELDS)


class BackupSettingsView(PeerAPIView):
    """The peer's administrator saved the backup settings: follow them here too."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        payload = BackupSettingsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.accept_backup_settings(payload.validated_data)
        return Response({"detail": "saved"})


# How long a freeze waits for writes that started before it.
FREEZE_DRAIN_SECONDS = 20


def _drained() -> bool:
    try:
        return writes.wait_until_drained(FREEZE_DRAIN_SECONDS)
    except redis.RedisError:
        return False  # cannot tell: do not freeze into a switchover that might lose a write


class RoleSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["freeze", "thaw", "step_down", "yield", "become_primary"]
    )
    epoch = serializers.IntegerField(min_value=1, required=False)
    sync_first = serializers.BooleanField(default=False)


class RoleView(PeerAPIView):
    """Role changes the other site asks of this one during a handover."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        payload = RoleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        action = payload.validated_data["action"]
        state = FailoverState.load()
        peer = f"peer {state.peer_name}"
        try:
            if action in ("freeze", "thaw"):
                if state.role != Role.PRIMARY:
                    raise roles.RoleError(f"This site is {state.role}.", reason="not_primary")
                FailoverState.objects.filter(pk=1).update(switching_over=action == "freeze")
                if action == "freeze" and not _drained():
                    FailoverState.objects.filter(pk=1).update(switching_over=False)
                    raise roles.RoleError(
                        f"Writes were still running on this site after {FREEZE_DRAIN_SECONDS} s; "
                        "it takes changes again. Try the switchover once they are done.",
                        reason="writes_in_flight",
                    )
            elif action in ("step_down", "yield"):
                epoch = payload.validated_data.get("epoch")
                if state.role == Role.BACKUP and epoch == state.epoch:
                    # Already done (a retried request): say so rather than refuse.
                    return Response(services.identity())
                if epoch is None or epoch <= state.epoch:
                    raise roles.RoleError(
                        f"Epoch {epoch} is not newer than this site's {state.epoch}.",
                        reason="stale_epoch",
                    )
                if action == "yield":
                    # Fix This Error: the losing side keeps its data in an export first.
                    roles.export_data(f"{state.peer_name} won the role conflict")
                roles.demote(epoch, f"{state.peer_name} is taking over.", peer)
            else:
                if state.role != Role.BACKUP:
                    raise roles.RoleError(f"This site is {state.role}.", reason="not_backup")
                # The handover may wait for a final sync: the worker does it, not this request.
                tasks.change_role.delay(
                    "become_primary", peer, payload.validated_data["sync_first"]
                )
                return Response(services.identity(), status=status.HTTP_202_ACCEPTED)
        except roles.RoleError as error:
            return Response(
                {"reason": error.reason, "detail": error.message}, status=status.HTTP_409_CONFLICT
            )
        return Response(services.identity())
