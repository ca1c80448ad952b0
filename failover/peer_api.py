"""The peer API: endpoints only the other site may call (signed requests, signed answers)."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from appliance.models import Report
from failover import compat, pair_settings, relationship, replication, switchover
from failover.forms import PeerBackupSettings
from failover.models import BackupSettings, FailoverState, Role, SyncRun
from failover.roles import RoleError
from failover.sync import runs, stream
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
    version = serializers.CharField(max_length=100)
    # What the primary speaks and reads (failover.compat); absent from the first releases.
    compat = serializers.DictField(required=False)
    # The pair's salt and key id; absent from releases before salts (their key stays).
    pair_salt = serializers.RegexField(r"^[0-9a-f]{64}$", required=False)
    pair_key_id = serializers.RegexField(r"^pair-[0-9a-f]{16}$", required=False)


class RekeySerializer(serializers.Serializer):
    pair_salt = serializers.RegexField(r"^[0-9a-f]{64}$")
    pair_key_id = serializers.RegexField(r"^pair-[0-9a-f]{16}$")


class BreakSerializer(serializers.Serializer):
    epoch = serializers.IntegerField(min_value=0)
    sender = serializers.CharField(max_length=100, required=False, source="from")


def refused(error: relationship.RelationshipError | runs.SyncRefused | RoleError) -> Response:
    return Response(
        {"reason": error.reason, "detail": error.message}, status=status.HTTP_409_CONFLICT
    )


class HelloView(PeerAPIView):
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(relationship.identity())


class EstablishView(PeerAPIView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        payload = EstablishSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            relationship.accept_establish(payload.validated_data)
        except relationship.RelationshipError as error:
            return refused(error)
        return Response(relationship.identity(), status=status.HTTP_201_CREATED)


class RekeyView(PeerAPIView):
    """The other site agreed a new salt and key id for the pair's signing key."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        payload = RekeySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if not FailoverState.load().is_paired:
            return Response(
                {"reason": "not_paired", "detail": "This site is not paired."},
                status=status.HTTP_409_CONFLICT,
            )
        relationship.accept_rekey(payload.validated_data)
        return Response({"detail": "rekeyed"})


class BreakView(PeerAPIView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        BreakSerializer(data=request.data).is_valid(raise_exception=True)
        relationship.accept_break(request.data)
        return Response(relationship.identity())


class SyncChangesSerializer(serializers.Serializer):
    generation = serializers.UUIDField(allow_null=True)
    since = serializers.IntegerField(min_value=0, allow_null=True)
    full = serializers.BooleanField(default=False)
    # Continuous replication: hold the request until there is a change (a long poll)
    # and send at most `limit` changes.
    follow = serializers.BooleanField(default=False)
    wait = serializers.IntegerField(min_value=0, max_value=replication.WAIT_SECONDS, default=0)
    limit = serializers.IntegerField(
        min_value=1, max_value=replication.BATCH_CHANGES, default=replication.BATCH_CHANGES
    )
    # What the backup reads (failover.compat); absent from the first releases.
    compat = serializers.DictField(required=False, allow_null=True, default=None)
    # The sync format of what the backup has applied so far; absent from the first releases.
    applied_format = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None
    )


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
        if refusal := compat.refusal_to_send(data["compat"]):
            return Response(
                {"reason": "incompatible", "detail": refusal}, status=status.HTTP_409_CONFLICT
            )
        generation = str(data["generation"]) if data["generation"] else None
        # Every request for changes says how far the backup has applied: its acknowledgement.
        replication.note_ack(generation, data["since"])
        sync_format = compat.format_to_send(data["compat"])
        full = data["full"] or compat.needs_full(data["applied_format"], sync_format)
        if data["follow"] and full:
            return Response(
                {
                    "reason": "resync_needed",
                    "detail": f"The backup holds data in sync format {data['applied_format']}, "
                    f"which left out what format {sync_format} carries: it needs a full sync.",
                },
                status=status.HTTP_409_CONFLICT,
            )
        if data["follow"]:
            try:
                plan = replication.changes_for(
                    generation, data["since"], wait=data["wait"], limit=data["limit"]
                )
            except replication.ResyncNeeded as needed:
                return Response(
                    {"reason": "resync_needed", "detail": str(needed)},
                    status=status.HTTP_409_CONFLICT,
                )
            except replication.NotFollowing as stopped:
                return Response(
                    {"reason": "not_following", "detail": str(stopped)},
                    status=status.HTTP_409_CONFLICT,
                )
        else:
            plan = stream.Plan.make(generation, data["since"], full)
        seal_key = signing.stream_seal_key(request.auth.key, request.auth.nonce)
        return StreamingHttpResponse(
            stream.sealed_stream(plan, seal_key, sync_format),
            content_type="application/x-ndjson",
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
            detail = runs.accept_sync_request(payload.validated_data)
        except runs.SyncRefused as error:
            return refused(error)
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


class BackupSettingsView(PeerAPIView):
    """The peer's administrator saved the backup settings: follow them here too, if this
    site's own Failover page would accept them (400 with every reason otherwise)."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        payload = PeerBackupSettings(request.data, BackupSettings.load())
        if not payload.is_valid():
            return Response(
                {
                    "reason": "invalid_settings",
                    "detail": payload.sentence(),
                    "errors": payload.errors,
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        pair_settings.accept_backup_settings(payload.cleaned_data)
        return Response({"detail": "saved"})


class RoleSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=switchover.PEER_ACTIONS)
    epoch = serializers.IntegerField(min_value=1, required=False)
    sync_first = serializers.BooleanField(default=False)
    cursor = serializers.DictField(required=False, allow_null=True)
    log = serializers.DictField(required=False, allow_null=True)


class RoleView(PeerAPIView):
    """Role changes the other site asks of this one during a handover."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        payload = RoleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            queued = switchover.accept(
                data["action"],
                epoch=data.get("epoch"),
                sync_first=data["sync_first"],
                cursor=data.get("cursor"),
                log=data.get("log"),
            )
        except RoleError as error:
            return refused(error)
        answer = status.HTTP_202_ACCEPTED if queued else status.HTTP_200_OK
        return Response(relationship.identity(), status=answer)
