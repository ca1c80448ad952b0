"""The Users tab: accounts, their passwords and administrative rights, and groups.

Every change is recorded in the audit trail, never with a password. Changes
that could remove an administrator run with the administrators locked, so the
rule "someone can always administer this site" holds under concurrent edits.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.models import Group, Permission, User
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from appliance.models import AuditEvent
from appliance.permissions import admin_required
from appliance.signals import rows_written
from appliance.user_forms import (
    DeactivateUserForm,
    GroupForm,
    UserCreateForm,
    UserEditForm,
    UserPasswordForm,
    administrators_locked,
)

PAGE_SIZE = 50


@admin_required
def user_list(request: HttpRequest) -> HttpResponse:
    """All accounts, by user name. Each word of the search must match a name or the e-mail."""
    query = request.GET.get("q", "").strip()
    users = User.objects.order_by("username").prefetch_related("groups")
    for term in query.split():
        users = users.filter(
            Q(username__icontains=term)
            | Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
            | Q(email__icontains=term)
        )
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "appliance/users/user_list.html", {"page": page, "query": query})


@sensitive_post_parameters("password1", "password2")
@sensitive_variables("form")
@admin_required
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            groups = ", ".join(user.groups.order_by("name").values_list("name", flat=True))
            AuditEvent.record(
                request.user,
                "user.created",
                f"Created user {user.username} (administrative rights: "
                f"{'yes' if user.is_superuser else 'no'}; groups: {groups or 'none'}).",
            )
        messages.success(request, f"User {user.username} created.")
        return redirect("appliance:users:list")
    return render(request, "appliance/users/user_create.html", {"form": form})


@admin_required
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    form = UserEditForm(
        request.POST or None, instance=get_object_or_404(User, pk=pk), actor=request.user
    )
    changes = _save_user(request, form) if request.method == "POST" else None
    if changes is None:
        return _edit_page(request, pk, form)
    username = form.instance.username
    if changes:
        messages.success(request, f"User {username} saved.")
    else:
        messages.info(request, f"Nothing changed for user {username}.")
    return redirect("appliance:users:list")


def _save_user(request: HttpRequest, form: UserEditForm) -> str | None:
    """Validate and save with the administrators locked: the changes made, or None if invalid."""
    with administrators_locked():
        if not form.is_valid():
            return None
        user = form.save()
        changes = form.describe_changes()
        if changes:
            AuditEvent.record(
                request.user, "user.changed", f"Changed user {user.username}: {changes}."
            )
        return changes


@sensitive_post_parameters("new_password1", "new_password2")
@sensitive_variables("form")
@admin_required
def user_set_password(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    form = UserPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            AuditEvent.record(
                request.user, "user.password_set", f"Set a new password for user {user.username}."
            )
        if user.pk == request.user.pk:
            # Changing the password invalidates sessions; keep the one doing it.
            update_session_auth_hash(request, user)
        messages.success(request, f"New password of user {user.username} set.")
        return redirect("appliance:users:edit", pk=user.pk)
    return render(request, "appliance/users/user_password.html", {"form": form, "account": user})


@admin_required
@require_POST
def user_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    form = DeactivateUserForm(request.POST, actor=request.user, user=user)
    with administrators_locked():
        valid = form.is_valid()
        # Compare-and-set: 0 rows means it was already inactive.
        changed = valid and User.objects.filter(pk=pk, is_active=True).update(is_active=False)
        if changed:
            rows_written.send(sender=User, keys=[pk], deleted=False)
            AuditEvent.record(
                request.user, "user.deactivated", f"Deactivated user {user.username}."
            )
    if not valid:
        return _edit_page(request, pk, UserEditForm(instance=user, actor=request.user), form)
    if changed:
        messages.success(request, f"User {user.username} deactivated: they can no longer log in.")
    else:
        messages.info(request, f"User {user.username} was already inactive.")
    return redirect("appliance:users:edit", pk=pk)


@admin_required
@require_POST
def user_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    with transaction.atomic():
        changed = User.objects.filter(pk=pk, is_active=False).update(is_active=True)
        if changed:
            rows_written.send(sender=User, keys=[pk], deleted=False)
            AuditEvent.record(
                request.user, "user.reactivated", f"Reactivated user {user.username}."
            )
    if changed:
        messages.success(request, f"User {user.username} reactivated: they can log in again.")
    else:
        messages.info(request, f"User {user.username} was already active.")
    return redirect("appliance:users:edit", pk=pk)


def _edit_page(
    request: HttpRequest,
    pk: int,
    form: UserEditForm,
    deactivate_form: DeactivateUserForm | None = None,
) -> HttpResponse:
    """The edit page, with the account as stored (the form may hold rejected input)."""
    context = {
        "form": form,
        "account": User.objects.get(pk=pk),
        "deactivate_form": deactivate_form,
    }
    return render(request, "appliance/users/user_edit.html", context)


@admin_required
def group_list(request: HttpRequest) -> HttpResponse:
    groups = Group.objects.order_by("name").annotate(
        members=Count("user", distinct=True), permission_count=Count("permissions", distinct=True)
    )
    return render(request, "appliance/users/group_list.html", {"groups": groups})


@admin_required
def group_create(request: HttpRequest) -> HttpResponse:
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            group = form.save()
            AuditEvent.record(
                request.user,
                "group.created",
                f"Created group {group.name} with permissions: "
                f"{_permission_names(group.permissions.all()) or 'none'}.",
            )
        messages.success(request, f"Group {group.name} created.")
        return redirect("appliance:users:groups")
    return render(request, "appliance/users/group_form.html", {"form": form})


@admin_required
def group_edit(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(Group, pk=pk)
    old_name = group.name
    old_permissions = set(_permission_keys(group.permissions.all()))
    form = GroupForm(request.POST or None, instance=group)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            group = form.save()
            new_permissions = set(_permission_keys(group.permissions.all()))
            changes = []
            if group.name != old_name:
                changes.append(f"name {old_name} → {group.name}")
            if added := sorted(new_permissions - old_permissions):
                changes.append(f"permissions added: {', '.join(added)}")
            if removed := sorted(old_permissions - new_permissions):
                changes.append(f"permissions removed: {', '.join(removed)}")
            if changes:
                AuditEvent.record(
                    request.user,
                    "group.changed",
                    f"Changed group {group.name}: {'; '.join(changes)}.",
                )
        if changes:
            messages.success(request, f"Group {group.name} saved.")
        else:
            messages.info(request, f"Nothing changed for group {group.name}.")
        return redirect("appliance:users:groups")
    return render(
        request, "appliance/users/group_form.html", {"form": form, "group_name": old_name}
    )


def _permission_keys(permissions: QuerySet[Permission]) -> list[str]:
    """Permissions as app_label.codename: short, stable and unambiguous in the audit trail."""
    return [
        f"{p.content_type.app_label}.{p.codename}"
        for p in permissions.select_related("content_type")
    ]


def _permission_names(permissions: QuerySet[Permission]) -> str:
    return ", ".join(sorted(_permission_keys(permissions)))
