"""Management > API Accounts: the page that makes API accounts and shows each secret once."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from oauth2_provider.models import AccessToken

from appliance.models import ApiAccount, AuditEvent
from failover.models import Role
from tests.conftest import bearer_client, make_api_account, paired_as

pytestmark = pytest.mark.django_db

LIST = reverse("appliance:api_accounts:list")
CREATE = reverse("appliance:api_accounts:create")


def shown_secret(response) -> str:
    return re.search(r'data-testid="client-secret">([^<]+)<', response.content.decode()).group(1)


def test_anonymous_visitors_go_to_the_login_page(anon_client):
    response = anon_client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/login")


def test_users_without_administrative_rights_are_refused(user_client):
    assert user_client.get(LIST).status_code == 403
    assert user_client.post(CREATE, {"name": "x", "access": "full"}).status_code == 403
    assert not ApiAccount.objects.exists()


def test_the_management_menu_leads_to_the_page(admin_client):
    assert LIST.encode() in admin_client.get(reverse("appliance:status")).content


def test_an_account_is_created_and_its_secret_shown_once(admin_client):
    response = admin_client.post(
        CREATE, {"name": "monitoring", "access": "read_only", "enabled": "on"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    account = ApiAccount.objects.get()
    assert (account.name, account.access, account.enabled) == ("monitoring", "read_only", True)
    secret = shown_secret(response)
    assert account.check_secret(secret)
    assert account.client_id in response.content.decode()
    # The secret works, and is never shown again.
    assert bearer_client(account, secret).get("/api/command?action=check_health").status_code == 200
    for page in (LIST, reverse("appliance:api_accounts:edit", args=[account.pk])):
        assert secret not in admin_client.get(page).content.decode()
    [audit] = AuditEvent.objects.filter(action="api_account.created")
    assert audit.actor == "admin"
    assert secret not in audit.detail and "monitoring" in audit.detail


def test_the_list_shows_permission_status_and_last_use(admin_client):
    make_api_account("monitoring")
    make_api_account("runbook", full=True, enabled=False)
    page = admin_client.get(LIST).content.decode()
    assert "monitoring" in page and "runbook" in page
    assert "Read-only" in page and "Full" in page
    assert 'data-testid="disabled-badge"' in page
    assert "Never" in page


def test_a_second_account_of_the_same_name_is_refused_saying_why(admin_client):
    make_api_account("Monitoring")
    response = admin_client.post(CREATE, {"name": "monitoring", "access": "full"})
    assert response.status_code == 200
    assert (
        "An API account named Monitoring exists already: choose another name."
        in response.content.decode()
    )
    assert ApiAccount.objects.count() == 1


def test_an_account_is_edited_and_the_change_audited(admin_client):
    account, _ = make_api_account("monitoring")
    response = admin_client.post(
        reverse("appliance:api_accounts:edit", args=[account.pk]),
        {"name": "monitoring", "access": "full"},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.access, account.enabled) == ("full", False)
    [audit] = AuditEvent.objects.filter(action="api_account.changed")
    assert "permission → Full" in audit.detail and "disabled" in audit.detail


def test_regenerating_the_secret_shows_the_new_one_once_and_revokes_the_tokens(admin_client):
    account, old = make_api_account("monitoring")
    client = bearer_client(account, old)
    response = admin_client.post(reverse("appliance:api_accounts:regenerate", args=[account.pk]))
    assert response.status_code == 200
    new = shown_secret(response)
    account.refresh_from_db()
    assert account.check_secret(new) and not account.check_secret(old)
    assert not AccessToken.objects.exists()
    assert client.get("/api/command?action=check_health").status_code == 401
    assert AuditEvent.objects.filter(action="api_account.secret_regenerated").exists()


def test_regenerating_needs_a_post(admin_client):
    account, _ = make_api_account("monitoring")
    url = reverse("appliance:api_accounts:regenerate", args=[account.pk])
    assert admin_client.get(url).status_code == 405


def test_an_account_is_deleted_with_its_tokens(admin_client):
    account, secret = make_api_account("monitoring")
    bearer_client(account, secret)
    response = admin_client.post(reverse("appliance:api_accounts:delete", args=[account.pk]))
    assert response.status_code == 302
    assert not ApiAccount.objects.exists()
    assert not AccessToken.objects.exists()
    assert AuditEvent.objects.filter(action="api_account.deleted").exists()


def test_on_the_backup_the_page_redirects_to_status_naming_the_primary(admin_client):
    paired_as(Role.BACKUP, peer_name="site-a")
    response = admin_client.get(LIST, follow=True)
    assert response.redirect_chain[-1][0] == reverse("appliance:status")
    assert "API accounts are managed on the primary, site-a" in response.content.decode()
    assert LIST.encode() not in admin_client.get(reverse("appliance:status")).content
