"""API accounts in the data sync: the account, its secret's hash and its tokens' checksums.

A monitor holds one bearer token and polls the shared IP; after a failover the new
primary must know that token. Here one database plays both sides: the rows the
primary sends, then the backup applying them (tests/test_command_api_sites.py and
the lab run it between real sites).
"""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.db import connection
from django.test import Client
from oauth2_provider.models import AccessToken

from appliance.models import ApiAccount, ApiAccountUse
from failover.models import ChangeLog
from failover.sync import codec
from failover.sync.stream import _line
from tests.conftest import basic_credentials, make_api_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("healthy_site")]

CHECK_HEALTH = "/api/command?action=check_health"


def issue_token(account: ApiAccount, secret: str) -> str:
    response = Client().post(
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_credentials(account.client_id, secret),
    )
    return response.json()["access_token"]


def sent(account: ApiAccount) -> list:
    """The account's row as the primary puts it on the wire, read back as the backup does."""
    synced = codec.BY_MODEL[ApiAccount]
    [row] = synced.rows([account.pk])
    values = orjson.loads(_line(row))
    return [
        convert(value) for convert, value in zip(synced.converters(connection), values, strict=True)
    ]


def apply(row: list) -> None:
    codec.BY_MODEL[ApiAccount].upsert([row], codec.PermissionMap())


def works(token: str) -> bool:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}").get(CHECK_HEALTH).status_code == 200


def test_a_new_token_is_a_change_of_its_account_and_a_use_is_not():
    account, secret = make_api_account()
    ChangeLog.objects.all().delete()
    token = issue_token(account, secret)
    assert list(ChangeLog.objects.values_list("model", "key")) == [
        ("appliance.apiaccount", account.pk)
    ]
    ApiAccountUse.objects.all().delete()
    assert works(token)
    assert ChangeLog.objects.count() == 1


def test_the_row_carries_the_secrets_hash_and_the_live_tokens_checksums_only():
    account, secret = make_api_account()
    token = issue_token(account, secret)
    expired = issue_token(account, secret)
    stored = AccessToken.objects.order_by("pk")
    stored.filter(pk=stored.last().pk).update(expires=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    line = _line(codec.BY_MODEL[ApiAccount].rows([account.pk]).__next__()).decode()
    assert secret not in line and token not in line and expired not in line
    [live] = sent(account)[-1]
    assert live[0] == stored.first().token_checksum
    assert live[3] == "api"


def test_the_backup_adopts_the_primarys_tokens_and_keeps_its_own():
    account, secret = make_api_account()
    primarys = issue_token(account, secret)
    row = sent(account)
    # The backup: it knows the account, and issued a token of its own to the monitor.
    AccessToken.objects.all().delete()
    backups = issue_token(account, secret)
    assert not works(primarys)

    apply(row)
    apply(row)  # a second sync of the same row changes nothing
    assert works(primarys) and works(backups)
    assert AccessToken.objects.count() == 2
    adopted = AccessToken.objects.get(token_checksum=row[-1][0][0])
    assert adopted.created == dt.datetime.fromisoformat(row[-1][0][2])
    assert adopted.token == ""


def test_an_adopted_token_stops_working_when_the_account_gets_a_new_secret():
    account, secret = make_api_account()
    token = issue_token(account, secret)
    row = sent(account)
    AccessToken.objects.all().delete()
    apply(row)
    assert works(token)
    account.set_new_secret()
    account.save()
    apply(sent(account))
    assert not works(token)


def test_a_deleted_account_on_the_primary_takes_its_tokens_on_the_backup():
    account, secret = make_api_account()
    token = issue_token(account, secret)
    codec.BY_MODEL[ApiAccount].delete([account.pk])
    assert not AccessToken.objects.exists()
    assert not works(token)
