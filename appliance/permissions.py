"""Who may do what: "administrative rights" is the superuser flag."""

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


class IsAdministrator(BasePermission):
    message = "This endpoint needs an account with administrative rights."

    def has_permission(self, request, view) -> bool:
        return is_administrator(request.user)
