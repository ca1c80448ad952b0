"""On a backup, the pages of the data it mirrors redirect to Status with a message.

The backup's users, reports, configuration and API accounts are copies that the
next sync overwrites, so they are edited on the primary only (the seed:
"extraneous tabs will be removed from the backup site").
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from failover import writes
from failover.models import FailoverState, Role

PRIMARY_ONLY_NAMESPACES = {"appliance:users", "appliance:reports", "appliance:api_accounts"}
PRIMARY_ONLY_VIEWS = {"appliance:configuration"}


def is_primary_only(request: HttpRequest) -> bool:
    match = request.resolver_match
    if match is None:
        return False
    return match.namespace in PRIMARY_ONLY_NAMESPACES or match.view_name in PRIMARY_ONLY_VIEWS


PRIMARY_ONLY_API = ("/api/v1/reports/",)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class BackupRedirectMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS and request.path.startswith(PRIMARY_ONLY_API):
            state = FailoverState.load()
            if state.role == Role.BACKUP:
                # A write here would be overwritten by the next sync: refuse it, say where.
                where = f" at {state.peer_address}" if state.peer_address else ""
                return JsonResponse(
                    {
                        "reason": "not_primary",
                        "detail": f"This site is the backup: write to the primary, "
                        f"{state.peer_name or 'the other site'}{where}, or to the shared IP.",
                    },
                    status=409,
                )
        return self.get_response(request)

    def process_view(self, request: HttpRequest, *_args: object) -> HttpResponse | None:
        if not is_primary_only(request):
            return None
        state = FailoverState.load()
        if state.role != Role.BACKUP:
            return None
        primary = state.peer_name or "the primary"
        where = f" at {state.peer_address}" if state.peer_address else ""
        messages.info(
            request,
            f"This site is the backup. Users, reports, configuration and API accounts are "
            f"managed on the primary, {primary}{where}; this site receives them by data sync.",
        )
        return redirect("appliance:status")


# The Command API and its tokens stay open: a monitor's check_health must answer during a
# switchover, and set_failover_role refuses for itself while one runs.
ALWAYS_OPEN = (
    "/api/peer/",
    "/check_health",
    "/metrics",
    "/api/command",
    "/oauth2/token",
    "/static/",
    "/logout",
)


class SwitchoverMiddleware:
    """While Become Primary pulls a final sync, the primary takes no changes.

    Nothing written during the final sync may be lost, so every write is
    refused with a clear "switching over" answer, and only administrators may
    log in (to watch or to undo it). Peer calls and health checks go on.

    Every login is checked and counted as at any other time, whoever's name it
    gives: only a right password of a non-administrator meets the "switching over"
    page (`refuse_login`). Answering by the name alone would tell a stranger which
    names are administrators'.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(ALWAYS_OPEN):
            return self.get_response(request)
        if request.method in SAFE_METHODS:
            if not FailoverState.load().switching_over:
                return self.get_response(request)
            user = getattr(request, "user", None)
            if (user and user.is_authenticated and user.is_superuser) or request.path == "/login":
                return self.get_response(request)
            return _switching(request)
        # A write registers itself before it reads the flag: a freeze sets the flag,
        # then waits for the writes that read it unset (failover.writes).
        with writes.in_flight():
            if not FailoverState.load().switching_over:
                return self.get_response(request)
            if request.path == "/login":
                return self.get_response(request)
            return _switching(request)


def refuse_login(request: HttpRequest, user: User, **_kwargs: object) -> HttpResponse | None:
    """During a switchover only administrators log in (appliance.signals.login_refusal)."""
    if user.is_superuser or not FailoverState.load().switching_over:
        return None
    return _switching(request)


def _switching(request: HttpRequest) -> HttpResponse:
    response = render(request, "failover/switching_over.html", status=503)
    response["Retry-After"] = "30"
    return response
