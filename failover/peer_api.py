"""The peer API: endpoints only the other site may call (signed requests, signed answers)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from failover import services
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
