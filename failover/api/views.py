"""The health API: the Command API (XML), the JSON report, and /check_health for load balancers.

All three answer from `failover.health.site_health()`, which checks this site only (never the
peer), so they stay cheap enough to be polled every few seconds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    permission_classes,
    renderer_classes,
)
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from appliance.permissions import IsAdministrator
from failover.api.serializers import (
    ROLE_VALUES,
    LoadBalancerHealthySerializer,
    LoadBalancerUnhealthySerializer,
    SiteHealthSerializer,
)
from failover.api.xml import XMLRenderer, error_element, health_check_element
from failover.health import site_health

XML = "application/xml"
NO_STORE = {"Cache-Control": "no-store"}


def check_health(request: Request) -> Response:
    """The `check_health` command: the site's health as `<health_check>`."""
    return Response(health_check_element(site_health()), headers=NO_STORE)


TRUE_FLAGS = {"1", "true", "yes"}


def set_failover_role(request: Request) -> Response:
    """`set_failover_role`: role=primary|backup, data_sync_first=0|1, force=0|1.

    The change runs in the worker like the page's buttons (a final sync can take a
    while); the answer says it started, and the status history shows each step.
    """
    params = request.query_params
    role = str(params.get("role", ""))
    started = start_role_change(
        role,
        request.user.get_username(),
        data_sync_first=str(params.get("data_sync_first", "0")).lower() in TRUE_FLAGS,
        force=str(params.get("force", "0")).lower() in TRUE_FLAGS,
    )
    if isinstance(started, str):
        return Response(error_element(started), status=400)
    root = ET.Element("set_failover_role")
    ET.SubElement(root, "success").text = "1"
    ET.SubElement(root, "message").text = started.detail
    return Response(root, status=202, headers=NO_STORE)


@dataclass(frozen=True)
class Started:
    detail: str


def start_role_change(
    role: str, actor: str, *, data_sync_first: bool, force: bool
) -> Started | str:
    """Queue a role change; returns Started, or a sentence saying why the request is wrong."""
    from failover import tasks
    from failover.models import FailoverState, Role

    state = FailoverState.load()
    if role not in (Role.PRIMARY, Role.BACKUP):
        return f"role must be primary or backup, not {role!r}."
    if state.role == role:
        return f"This site is already {role}."
    if state.role == Role.NONE:
        return "This site is not paired: establish a relationship first."
    action = "become_primary" if role == Role.PRIMARY else "become_backup"
    flag = data_sync_first if role == Role.PRIMARY else force
    tasks.change_role.delay(action, actor, flag)
    return Started(f"{action.replace('_', ' ').capitalize()} started; see the status history.")


# The Command API's actions by name. Each takes the request and returns the answer.
COMMANDS: dict[str, Callable[[Request], Response]] = {
    "check_health": check_health,
    "set_failover_role": set_failover_role,
}


class AlwaysXML(BaseContentNegotiation):
    """The Command API answers XML whatever the client's Accept header or `format` asks for."""

    def select_parser(self, request: Request, parsers: list[BaseParser]) -> BaseParser | None:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


HEALTH_CHECK_XML_SCHEMA = {
    "type": "object",
    "xml": {"name": "health_check"},
    "properties": {
        "appliance": {
            "type": "object",
            "properties": {
                "id": {
                    "type": "string",
                    "xml": {"attribute": True},
                    "description": "This site's name (APPLIANCE_NAME).",
                },
                "version": {"type": "string"},
                "success": {
                    "type": "integer",
                    "enum": [0, 1],
                    "description": "1 when the database, worker, beat and broker all work.",
                },
                "error_message": {
                    "type": "string",
                    "description": "Every failed check in sentences; empty when healthy.",
                },
                "failover_role": {"type": "string", "enum": ROLE_VALUES},
                "enabled_shared_ips": {
                    "type": "array",
                    "xml": {"wrapped": True},
                    "items": {"type": "string", "xml": {"name": "ip"}},
                },
                "last_data_sync_time": {
                    "type": "string",
                    "description": "When the last data sync ended (ISO 8601), with the same "
                    "time in Unix seconds in its `ts` attribute. Empty, without `ts`, when this "
                    "site never synced.",
                },
                "last_data_sync_status": {"type": "string"},
            },
        }
    },
}
ERROR_XML_SCHEMA = {"type": "string", "xml": {"name": "error"}}
HEALTH_CHECK_XML_EXAMPLE = """<?xml version='1.0' encoding='utf-8'?>
<health_check>
  <appliance id="site-a">
    <version>0.1.0</version>
    <success>0</success>
    <error_message>The Celery worker has not sent a heartbeat for 45 s. It should send one every 10 s; is it running?</error_message>
    <failover_role>primary</failover_role>
    <enabled_shared_ips />
    <last_data_sync_time />
    <last_data_sync_status>none</last_data_sync_status>
  </appliance>
</health_check>"""  # noqa: E501


def xml_error(description: str) -> OpenApiResponse:
    return OpenApiResponse(
        ERROR_XML_SCHEMA, description=f"{description} Body: `<error>why</error>`."
    )


class CommandView(APIView):
    """BeyondTrust-style Command API: `GET /api/command?action=...`, answering XML.

    For API tokens of accounts with administrative rights only (no browser sessions).
    """

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAdministrator]
    renderer_classes = [XMLRenderer]
    content_negotiation_class = AlwaysXML

    @extend_schema(
        operation_id="command",
        summary="Run a Command API action",
        description="`check_health` reports this site's health in the element names of "
        "BeyondTrust's Command API. A failing check is reported with `<success>0</success>`, "
        "still with status 200.",
        tags=["command"],
        parameters=[
            OpenApiParameter(
                "action",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=True,
                enum=sorted(COMMANDS),
                description="The action to run.",
            )
        ],
        responses={
            (200, XML): OpenApiResponse(
                HEALTH_CHECK_XML_SCHEMA,
                description="The site's health.",
                examples=[OpenApiExample("check_health", value=HEALTH_CHECK_XML_EXAMPLE)],
            ),
            (400, XML): xml_error("Unknown or missing action; the message names the valid ones."),
            (401, XML): xml_error("No API token, or an invalid one."),
            (403, XML): xml_error("The token's account has no administrative rights."),
        },
    )
    def get(self, request: Request) -> Response:
        action = request.query_params.get("action", "")
        command = COMMANDS.get(action)
        if command is None:
            valid = ", ".join(sorted(COMMANDS))
            reason = f"Unknown action {action!r}." if action else "No action given."
            return Response(error_element(f"{reason} Valid actions: {valid}."), status=400)
        return command(request)


class HealthView(APIView):
    @extend_schema(
        operation_id="health",
        summary="Report this site's health",
        description="The same facts as the Command API's `check_health`, as JSON. A failing "
        "check is reported with `success: false`, still with status 200.",
        tags=["health"],
        responses=SiteHealthSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(SiteHealthSerializer(site_health()).data, headers=NO_STORE)


@extend_schema(
    operation_id="check_health",
    summary="Health check for load balancers",
    description="No authentication. 200 when this site is healthy, 500 when not. Never calls "
    "the peer, and names what failed without revealing hosts, paths or errors.",
    tags=["health"],
    auth=[],
    responses={
        200: OpenApiResponse(LoadBalancerHealthySerializer, description="Healthy."),
        500: OpenApiResponse(LoadBalancerUnhealthySerializer, description="Not healthy."),
    },
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@renderer_classes([JSONRenderer])
def load_balancer_check(request: Request) -> Response:
    health = site_health()
    body: dict[str, object] = {"healthy": health.success, "role": health.failover_role}
    if not health.success:
        body["errors"] = health.public_errors
    return Response(body, status=200 if health.success else 500, headers=NO_STORE)


class FailoverRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["primary", "backup"])
    data_sync_first = serializers.BooleanField(default=False)
    force = serializers.BooleanField(default=False)


class FailoverRoleView(APIView):
    """`set_failover_role` as JSON: POST role, data_sync_first, force; 202 when started."""

    @extend_schema(
        operation_id="set_failover_role",
        request=FailoverRoleSerializer,
        responses={202: OpenApiResponse(description="The role change started.")},
        tags=["failover"],
    )
    def post(self, request: Request) -> Response:
        payload = FailoverRoleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        started = start_role_change(
            data["role"],
            request.user.get_username(),
            data_sync_first=data["data_sync_first"],
            force=data["force"],
        )
        if isinstance(started, str):
            return Response({"detail": started}, status=400)
        return Response({"detail": started.detail}, status=202)
