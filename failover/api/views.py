"""The health API: the Command API (XML), the JSON report, and /check_health for load balancers.

The Command API answers as BeyondTrust's does, so scripts written for it work
unchanged: GET or POST (form-encoded) `/api/command` with `action=...`, XML in its
namespace (schema at /api/command.xsd). API accounts' bearer tokens and
administrators' API tokens are accepted; read-only accounts may run `check_health`,
full ones also `set_failover_role`.

Health answers come from `failover.health.site_health()`, which checks this site
only (never the peer), so they stay cheap enough to be polled every few seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    content_negotiation_class,
    permission_classes,
    renderer_classes,
)
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import BaseParser, FormParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from appliance.api_accounts import ApiAccountAuthentication
from appliance.api_tokens import ApiTokenAuthentication
from appliance.permissions import FULL, HasReadAccess, api_access
from failover import switchover
from failover.api.serializers import ROLE_VALUES, SiteHealthSerializer
from failover.api.xml import (
    XMLRenderer,
    error_element,
    health_check_element,
    schema_text,
    success_element,
)
from failover.health import site_health
from failover.roles import RoleError

XML = "application/xml"
NO_STORE = {"Cache-Control": "no-store"}
TRUE_FLAGS = {"1", "true", "yes"}
FALSE_FLAGS = {"0", "false", "no", ""}
# set_failover_role's refusals by reason: the caller's mistake, a wait that ran out, or
# the pair's state (every other reason, 409).
REFUSAL_STATUS = {"invalid_role": 400, "handover_timeout": 504}


class BadParameter(Exception):
    pass


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = str(params.get(name, "0")).strip().lower()
    if value in TRUE_FLAGS:
        return True
    if value in FALSE_FLAGS:
        return False
    raise BadParameter(f"{name} must be 0 or 1, not {value!r}.")


def check_health(request: Request, params: Mapping[str, str]) -> Response:
    """The `check_health` command: the site's health as `<health_check>`."""
    return Response(health_check_element(site_health()), headers=NO_STORE)


def set_failover_role(request: Request, params: Mapping[str, str]) -> Response:
    """`set_failover_role`: role=primary|backup, data_sync_first=0|1, force=0|1.

    Answers BeyondTrust's `<success>` texts: the role changed (200), or a final data
    sync runs first and the role changes when it succeeds (202; the status history
    shows each step). Refusals are `<error>` with the reason, and change nothing.
    """
    try:
        data_sync_first, force = _flag(params, "data_sync_first"), _flag(params, "force")
    except BadParameter as error:
        return Response(error_element(str(error)), status=400, headers=NO_STORE)
    try:
        done = switchover.set_failover_role(
            str(params.get("role", "")),
            request.user.get_username(),
            data_sync_first=data_sync_first,
            force=force,
        )
    except RoleError as error:
        status = REFUSAL_STATUS.get(error.reason, 409)
        return Response(error_element(error.message), status=status, headers=NO_STORE)
    return Response(
        success_element(done.detail), status=200 if done.completed else 202, headers=NO_STORE
    )


@dataclass(frozen=True)
class Command:
    run: Callable[[Request, Mapping[str, str]], Response]
    full_access: bool


# The Command API's actions by name, and whether they need full access.
COMMANDS: dict[str, Command] = {
    "check_health": Command(check_health, full_access=False),
    "set_failover_role": Command(set_failover_role, full_access=True),
}


class XMLAnswers(BaseContentNegotiation):
    """Requests are parsed as DRF would; answers take the view's one form (the Command API's
    XML, /check_health's line) whatever Accept or `format` ask for."""

    def select_parser(self, request: Request, parsers: list[BaseParser]) -> BaseParser | None:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


def _xml_schema(name: str, properties: dict, description: str) -> dict:
    return {"type": "object", "xml": {"name": name}, "description": description, **properties}


HEALTH_CHECK_XML_SCHEMA = _xml_schema(
    "health_check",
    {
        "properties": {
            "appliance": {
                "type": "string",
                "description": "This site's name (APPLIANCE_NAME); its `id` attribute is the "
                "site's GUID (APPLIANCE_ID).",
            },
            "version": {"type": "string"},
            "success": {
                "type": "integer",
                "enum": [0, 1],
                "description": "1 when the database, workers, beat and broker all work.",
            },
            "error_message": {
                "type": "string",
                "description": "Every failed check in sentences; left out when healthy.",
            },
            "failover_role": {"type": "string", "enum": ROLE_VALUES},
            "enabled_shared_ips": {
                "type": "array",
                "xml": {"wrapped": True},
                "items": {"type": "string", "xml": {"name": "ip"}},
                "description": "The shared IP addresses this site holds now; left out when none.",
            },
            "last_data_sync_time": {
                "type": "string",
                "description": "When the last data sync ended (ISO 8601, UTC), with the same "
                "time in Unix seconds in its `ts` attribute. Left out when failover is not "
                "configured or no sync ended yet.",
            },
            "last_data_sync_status": {
                "type": "string",
                "description": "How the last data sync ended; left out when failover is not "
                "configured.",
            },
        },
        "required": ["appliance", "version", "success", "failover_role"],
    },
    "The site's health, flat, in the Command API's namespace.",
)
SUCCESS_XML_SCHEMA = {"type": "string", "xml": {"name": "success"}}
ERROR_XML_SCHEMA = {"type": "string", "xml": {"name": "error"}}
HEALTH_CHECK_XML_EXAMPLE = """<?xml version='1.0' encoding='utf-8'?>
<health_check xmlns="http://www.beyondtrust.com/namespaces/API/command">
  <appliance id="0f3c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f">site-a</appliance>
  <version>0.1.0</version>
  <success>1</success>
  <failover_role>primary</failover_role>
  <enabled_shared_ips>
    <ip>192.0.2.10</ip>
  </enabled_shared_ips>
  <last_data_sync_time ts="1767225600">2026-01-01T00:00:00+00:00</last_data_sync_time>
  <last_data_sync_status>succeeded</last_data_sync_status>
</health_check>"""


def xml_error(description: str) -> OpenApiResponse:
    return OpenApiResponse(
        ERROR_XML_SCHEMA, description=f"{description} Body: `<error>why</error>`."
    )


def _parameter(name: str, description: str, enum: list[str] | None = None) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.QUERY, enum=enum, description=description
    )


COMMAND_PARAMETERS = [
    OpenApiParameter(
        "action",
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        required=True,
        enum=sorted(COMMANDS),
        description="The action to run.",
    ),
    _parameter("role", "set_failover_role: the role this site takes.", ["primary", "backup"]),
    _parameter(
        "data_sync_first",
        "set_failover_role: 1 to pull a final data sync from the current primary before "
        "the roles swap (it then takes no changes until the swap is done).",
        ["0", "1"],
    ),
    _parameter(
        "force",
        "set_failover_role role=backup: 1 to become backup even when the other site cannot "
        "be reached.",
        ["0", "1"],
    ),
]
COMMAND_RESPONSES = {
    (200, XML): OpenApiResponse(
        {"oneOf": [HEALTH_CHECK_XML_SCHEMA, SUCCESS_XML_SCHEMA]},
        description="check_health: the site's health (a failing check is `success` 0, still "
        "200). set_failover_role: `<success>Successfully changed role.</success>`.",
        examples=[OpenApiExample("check_health", value=HEALTH_CHECK_XML_EXAMPLE)],
    ),
    (202, XML): OpenApiResponse(
        SUCCESS_XML_SCHEMA,
        description="set_failover_role with data_sync_first: `<success>Successfully started "
        "data sync. Role change will occur upon successful completion.</success>`.",
    ),
    (400, XML): xml_error("Unknown or missing action, or a bad parameter; the message says "
                          "what is valid."),
    (401, XML): xml_error("No credentials, or a token that is invalid, expired or revoked."),
    (403, XML): xml_error("The credentials may not run this action (read-only API account)."),
    (409, XML): xml_error(
        "set_failover_role refused by the pair's state: no relationship, already in that "
        "role, a switchover already running, or the other site unreachable without force."
    ),
    (415, XML): xml_error("A POST body that is not form-encoded."),
    (503, XML): xml_error("The database does not answer, so the credentials cannot be checked."),
    (504, XML): xml_error("role=backup: the other site did not take over in time."),
}  # fmt: skip


def command_schema(method: str) -> Callable:
    return extend_schema(
        operation_id=f"command_{method}",
        summary="Run a Command API action",
        description="BeyondTrust's Command API: `check_health` (read-only or full API accounts) "
        "and `set_failover_role` (full). Parameters in the query string, or for POST in a "
        "form-encoded body. Answers are XML in the namespace "
        "`http://www.beyondtrust.com/namespaces/API/command`, as described by "
        "`/api/command.xsd`.",
        tags=["command"],
        parameters=COMMAND_PARAMETERS,
        request={"application/x-www-form-urlencoded": OpenApiTypes.OBJECT}
        if method == "post"
        else None,
        responses=COMMAND_RESPONSES,
    )


class CommandView(APIView):
    """BeyondTrust's Command API: `GET|POST /api/command?action=...`, answering XML.

    For API accounts' bearer tokens and administrators' API tokens (no browser sessions).
    """

    authentication_classes = [ApiAccountAuthentication, ApiTokenAuthentication]
    permission_classes = [HasReadAccess]
    parser_classes = [FormParser]
    renderer_classes = [XMLRenderer]
    content_negotiation_class = XMLAnswers

    @command_schema("get")
    def get(self, request: Request) -> Response:
        return self.run(request, request.query_params)

    @command_schema("post")
    def post(self, request: Request) -> Response:
        body = request.data  # a QueryDict, or {} without a body
        params = {**request.query_params.dict(), **(body.dict() if body else {})}
        return self.run(request, params)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DatabaseError):
            # Even the credentials live in the database: say so in XML, not a server error page.
            return Response(
                error_element(
                    "This site's database does not answer, so the credentials cannot be "
                    "checked. /check_health answers without them (200 or 500)."
                ),
                status=503,
                headers=NO_STORE,
            )
        return super().handle_exception(exc)

    def run(self, request: Request, params: Mapping[str, str]) -> Response:
        action = str(params.get("action", ""))
        command = COMMANDS.get(action)
        if command is None:
            valid = ", ".join(sorted(COMMANDS))
            reason = f"Unknown action {action!r}." if action else "No action given."
            return Response(error_element(f"{reason} Valid actions: {valid}."), status=400)
        if command.full_access and api_access(request.user) != FULL:
            return Response(
                error_element(
                    f"{action} needs an API account with full access (or an administrator's "
                    "API token); this one is read-only."
                ),
                status=403,
            )
        return command.run(request, params)


def command_schema_document(request: HttpRequest) -> HttpResponse:
    """/api/command.xsd: the XML Schema of the Command API's answers (public, as BeyondTrust's)."""
    return HttpResponse(schema_text(), content_type="application/xml; charset=utf-8")


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


HEALTHY_LINE = "This site is healthy.\n"
UNHEALTHY_LINE = "This site is not healthy.\n"


class PlainTextRenderer(BaseRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: object, accepted_media_type=None, renderer_context=None) -> bytes:
        return str(data).encode(self.charset)


@extend_schema(
    operation_id="check_health",
    summary="Health check for load balancers",
    description="No authentication. 200 and one line when this site is healthy, 500 and one "
    "line when not; nothing about the site's role or what failed (that is behind "
    "authentication: /api/v1/health/ and the Command API's check_health). Never calls the peer.",
    tags=["health"],
    auth=[],
    responses={
        (200, "text/plain"): OpenApiResponse(
            OpenApiTypes.STR, description=f"Healthy: `{HEALTHY_LINE.strip()}`"
        ),
        (500, "text/plain"): OpenApiResponse(
            OpenApiTypes.STR, description=f"Not healthy: `{UNHEALTHY_LINE.strip()}`"
        ),
    },
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@renderer_classes([PlainTextRenderer])
@content_negotiation_class(XMLAnswers)
def load_balancer_check(request: Request) -> Response:
    """/check_health without credentials: 200 or 500 and one human-readable line, nothing else.

    Anyone who reaches a load balancer's probe may ask, so the answer says whether the
    site is healthy and nothing about its role or what failed.
    """
    healthy = site_health().success
    return Response(
        HEALTHY_LINE if healthy else UNHEALTHY_LINE,
        status=200 if healthy else 500,
        headers=NO_STORE,
    )


class FailoverRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["primary", "backup"])
    data_sync_first = serializers.BooleanField(default=False)
    force = serializers.BooleanField(default=False)


class FailoverRoleView(APIView):
    """`set_failover_role` as JSON: POST role, data_sync_first, force."""

    @extend_schema(
        operation_id="set_failover_role",
        request=FailoverRoleSerializer,
        responses={
            200: OpenApiResponse(description="The role changed."),
            202: OpenApiResponse(
                description="A final data sync runs first; the role changes when it succeeds."
            ),
            409: OpenApiResponse(description="Refused by the pair's state; nothing changed."),
            504: OpenApiResponse(description="The other site did not take over in time."),
        },
        tags=["failover"],
    )
    def post(self, request: Request) -> Response:
        payload = FailoverRoleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            done = switchover.set_failover_role(
                data["role"],
                request.user.get_username(),
                data_sync_first=data["data_sync_first"],
                force=data["force"],
            )
        except RoleError as error:
            status = REFUSAL_STATUS.get(error.reason, 409)
            return Response({"reason": error.reason, "detail": error.message}, status=status)
        return Response({"detail": done.detail}, status=200 if done.completed else 202)
