"""On a backup, the pages of the data it mirrors redirect to Status with a message.

The backup's users, reports and configuration are copies that the next sync
overwrites, so they are edited on the primary only (the seed: "extraneous tabs
will be removed from the backup site").
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from failover.models import FailoverState, Role

PRIMARY_ONLY_NAMESPACES = {"appliance:users", "appliance:reports"}
PRIMARY_ONLY_VIEWS = {"appliance:configuration"}


def is_primary_only(request: HttpRequest) -> bool:
    match = request.resolver_match
    if match is None:
        return False
    return match.namespace in PRIMARY_ONLY_NAMESPACES or match.view_name in PRIMARY_ONLY_VIEWS


class BackupRedirectMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
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
