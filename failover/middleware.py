"""On a backup, the pages of the data it mirrors redirect to Status with a message.

The backup's users, reports and configuration are copies that the next sync
overwrites, so they are edited on the primary only (the seed: "extraneous tabs
will be removed from the backup site").
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from failover import writes
from failover.models import FailoverState, Role

PRIMARY_ONLY_NAMESPACES = {"appliance:users", "appliance:reports"}
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
            f"This site is the backup. Users, reports and configuration are managed on the "
            f"primary, {primary}{where}; this site receives them by data sync.",
        )
        return redirect("appliance:status")


ALWAYS_OPEN = ("/api/peer/", "/check_health", "/static/", "/logout")


class SwitchoverMiddleware:
    """While Become Primary pulls a final sync, the primary takes no changes.

    Nothing written during the final sync may be lost, so every write is
    refused with a clear "switching over" answer, and only administrators may
    log in (to watch or to undo it). Peer calls and health checks go on.
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
            if request.path == "/login" and _posts_admin(request):
                return self.get_response(request)
            return _switching(request)


def _posts_admin(request: HttpRequest) -> bool:
    from django.contrib.auth.models import User

    name = request.POST.get("username", "")
    return User.objects.filter(username=name, is_superuser=True, is_active=True).exists()


def _switching(request: HttpRequest) -> HttpResponse:
    from django.shortcuts import render

    response = render(request, "failover/switching_over.html", status=503)
    response["Retry-After"] = "30"
    return response
