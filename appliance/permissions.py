"""Who may do what: "administrative rights" is the superuser flag.

The APIs also admit API accounts (appliance.api_accounts): read-only ones may
read check_health, full ones everything an administrator's API token may.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission


def is_administrator(user: object) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_superuser", False))


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to /login; signed-in users without administrative rights get 403."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not is_administrator(request.user):
            raise PermissionDenied("This page needs an account with administrative rights.")
        return view(request, *args, **kwargs)

    return wrapper


READ_ONLY, FULL = "read_only", "full"


def api_access(user: object) -> str | None:
    """What the caller may do through the APIs: "full", "read_only", or None (nothing).

    An administrator (session or API token) has full access; an API account has the
    permission it was given.
    """
    if is_administrator(user):
        return FULL
    return getattr(user, "api_access", None)


class HasFullAccess(BasePermission):
    message = (
        "This endpoint needs an account with administrative rights or an API account "
        "with full access."
    )

    def has_permission(self, request, view) -> bool:
        return api_access(request.user) == FULL


class HasReadAccess(BasePermission):
    message = (
        "This endpoint needs an account with administrative rights or an API account "
        "(read-only or full access)."
    )

    def has_permission(self, request, view) -> bool:
        return api_access(request.user) in (READ_ONLY, FULL)
