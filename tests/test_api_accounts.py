"""API accounts at work: OAuth 2.0 client credentials at /oauth2/token, bearer tokens on the APIs.

As BeyondTrust's clients use them: the client ID and secret in an HTTP Basic header
(or the form), `grant_type=client_credentials`, a bearer token that lasts an hour.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken

from appliance import api_accounts
from appliance.models import ApiAccount, ApiAccountUse
from failover.models import ChangeLog
from tests.command_api import as_dict, error_text
from tests.conftest import basic_credentials, bearer_client, make_api_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("healthy_site")]

TOKEN_URL = "/oauth2/token"
CHECK_HEALTH = "/api/command?action=check_health"


def ask_token(client_id: str, secret: str, **extra: str):
    return Client().post(
        TOKEN_URL,
        {"grant_type": "client_credentials", **extra},
        HTTP_AUTHORIZATION=basic_credentials(client_id, secret),
    )


def test_the_client_credentials_buy_a_bearer_token_for_an_hour():
    account, secret = make_api_account()
    response = ask_token(account.client_id, secret)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 30
    client = Client(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert as_dict(client.get(CHECK_HEALTH).content)["health_check"]["success"] == "1"


def test_the_credentials_may_come_in_the_form_instead():
    account, secret = make_api_account()
    response = Client().post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": account.client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200


@pytest.mark.parametrize("wrong", ["secret", "client_id"])
def test_wrong_credentials_get_no_token(wrong):
    account, secret = make_api_account()
    client_id = "0" * 40 if wrong == "client_id" else account.client_id
    response = ask_token(client_id, secret + "x" if wrong == "secret" else secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


def test_a_disabled_account_gets_no_token_and_its_tokens_stop_working():
    account, secret = make_api_account()
    client = bearer_client(account, secret)
    ApiAccount.objects.filter(pk=account.pk).update(enabled=False)
    response = client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert error_text(response.content) == "This token's API account was disabled or deleted."
    assert ask_token(account.client_id, secret).status_code == 401


def test_a_deleted_account_takes_its_tokens_along():
    account, secret = make_api_account()
    client = bearer_client(account, secret)
    account.delete()
    assert not AccessToken.objects.exists()
    assert client.get(CHECK_HEALTH).status_code == 401
    assert ask_token(account.client_id, secret).status_code == 401


def test_a_new_secret_retires_the_old_one_and_every_token_issued_before():
    account, old_secret = make_api_account()
    client = bearer_client(account, old_secret)
    new_secret = account.set_new_secret()
    account.save()
    # The tokens this site issued are refused even before they are deleted (a token the
    # other site issued is refused the same way once the new secret is synced there).
    response = client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert "new client secret" in error_text(response.content)
    assert ask_token(account.client_id, old_secret).status_code == 401
    assert ask_token(account.client_id, new_secret).status_code == 200


def test_an_expired_token_is_refused_saying_how_to_get_a_new_one():
    client = bearer_client(*make_api_account())
    AccessToken.objects.update(expires=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert error_text(response.content) == (
        "The access token has expired. Request a new one at /oauth2/token."
    )


def test_an_account_holds_at_most_thirty_tokens_and_a_new_one_retires_the_oldest():
    account, secret = make_api_account()
    first = ask_token(account.client_id, secret).json()["access_token"]
    for _ in range(api_accounts.TOKENS_PER_ACCOUNT):
        last = ask_token(account.client_id, secret).json()["access_token"]
    assert AccessToken.objects.count() == api_accounts.TOKENS_PER_ACCOUNT
    assert Client(HTTP_AUTHORIZATION=f"Bearer {first}").get(CHECK_HEALTH).status_code == 401
    assert Client(HTTP_AUTHORIZATION=f"Bearer {last}").get(CHECK_HEALTH).status_code == 200


def test_the_secret_is_kept_only_as_a_hash_and_tokens_only_as_checksums():
    account, secret = make_api_account()
    token = ask_token(account.client_id, secret).json()["access_token"]
    account.refresh_from_db()
    assert secret not in account.secret_hash
    assert account.check_secret(secret)
    stored = AccessToken.objects.get()
    assert stored.token == ""
    assert token not in stored.token_checksum


def test_its_use_is_recorded_on_this_site_at_most_once_a_minute():
    account, secret = make_api_account()
    assert account.last_used_at is None
    client = bearer_client(account, secret)
    first = account.last_used_at
    assert first is not None
    client.get(CHECK_HEALTH)
    assert account.last_used_at == first
    ApiAccountUse.objects.update(last_used_at=first - dt.timedelta(minutes=2))
    client.get(CHECK_HEALTH)
    assert account.last_used_at > first
    # A use is this site's own observation: it changes nothing that the data sync carries.
    assert not ChangeLog.objects.filter(model="appliance.apiaccount", at__gt=first).exists()


def test_a_token_cannot_be_sent_in_the_query_string():
    account, secret = make_api_account()
    token = ask_token(account.client_id, secret).json()["access_token"]
    response = Client().get(f"{CHECK_HEALTH}&access_token={token}")
    assert response.status_code == 401


def test_a_full_account_may_use_the_json_api_and_a_read_only_one_may_not():
    full = bearer_client(*make_api_account("runbook", full=True))
    read_only = bearer_client(*make_api_account("monitoring"))
    assert full.get("/api/v1/reports/").status_code == 200
    assert read_only.get("/api/v1/reports/").status_code == 403
