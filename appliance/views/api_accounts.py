"""Management > API Accounts: the accounts scripts use for the Command API and the JSON API.

As on BeyondTrust's API Configuration page: each account has a name, a permission
(read-only: check_health; full: also set_failover_role and the JSON API), an
enabled flag and the time it was last used (on this site). Its OAuth client secret is shown once,
on the page that answers its creation or regeneration, and kept only as a hash.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from appliance import api_accounts
from appliance.forms import ApiAccountForm
from appliance.models import ApiAccount, AuditEvent
from appliance.permissions import admin_required


@admin_required
def account_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "appliance/api_accounts/list.html", {"accounts": ApiAccount.with_last_use()}
    )


@sensitive_variables("secret")
@admin_required
def account_create(request: HttpRequest) -> HttpResponse:
    form = ApiAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            account = form.save(commit=False)
            secret = account.set_new_secret()
            account.save()
            AuditEvent.record(
                request.user,
                "api_account.created",
                f"Created API account {account.name} (permission: "
                f"{account.get_access_display()}; {'enabled' if account.enabled else 'disabled'}).",
            )
        return _show_secret(request, account, secret, created=True)
    return render(request, "appliance/api_accounts/form.html", {"form": form})


@admin_required
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(ApiAccount, pk=pk)
    form = ApiAccountForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            account = form.save()
            changes = form.describe_changes()
            if changes:
                AuditEvent.record(
                    request.user,
                    "api_account.changed",
                    f"Changed API account {account.name}: {changes}.",
                )
        if changes:
            messages.success(request, f"API account {account.name} saved.")
        else:
            messages.info(request, f"Nothing changed for API account {account.name}.")
        return redirect("appliance:api_accounts:list")
    stored = ApiAccount.objects.get(pk=pk)
    return render(request, "appliance/api_accounts/form.html", {"form": form, "account": stored})


@sensitive_variables("secret")
@admin_required
@require_POST
def account_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():
        account = get_object_or_404(ApiAccount.objects.select_for_update(), pk=pk)
        secret = account.set_new_secret()
        account.save()
        revoked = api_accounts.revoke_tokens(account)
        AuditEvent.record(
            request.user,
            "api_account.secret_regenerated",
            f"Regenerated the client secret of API account {account.name} "
            f"({revoked} token{'s' if revoked != 1 else ''} revoked).",
        )
    return _show_secret(request, account, secret, created=False)


@admin_required
@require_POST
def account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(ApiAccount, pk=pk)
    with transaction.atomic():
        account.delete()
        AuditEvent.record(
            request.user, "api_account.deleted", f"Deleted API account {account.name}."
        )
    messages.success(
        request, f"API account {account.name} deleted: its credentials and tokens no longer work."
    )
    return redirect("appliance:api_accounts:list")


def _show_secret(
    request: HttpRequest, account: ApiAccount, secret: str, *, created: bool
) -> HttpResponse:
    """The one page that shows the client secret: never cached, never shown again."""
    response = render(
        request,
        "appliance/api_accounts/secret.html",
        {"account": account, "secret": secret, "created": created},
    )
    add_never_cache_headers(response)
    return response
