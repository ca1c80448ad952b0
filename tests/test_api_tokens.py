"""Administrators' API tokens: shown once, kept as SHA-256 digests, working on every API."""

import datetime as dt
import hashlib
import importlib
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from appliance.models import ApiToken
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
hashed_tokens = importlib.import_module("appliance.migrations.0004_hashed_tokens")


def issue(username: str) -> str:
    out = StringIO()
    call_command("api_token", username, stdout=out)
    return out.getvalue().strip()


def test_the_command_prints_a_key_once_and_only_its_digest_is_kept():
    ops = make_user("ops", admin=True)
    key = issue("ops")
    assert len(key) >= 43  # 256 random bits
    stored = ApiToken.objects.get(user=ops)
    assert stored.digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(list(ApiToken.objects.values_list("digest", "created")))


def test_the_key_opens_the_api_and_nothing_else_does():
    make_user("ops", admin=True)
    key = issue("ops")
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/reports/").status_code == 200
    digest = ApiToken.objects.get().digest
    for wrong in (digest, key[:-1], ""):
        answer = Client(HTTP_AUTHORIZATION=f"Token {wrong}").get("/api/v1/reports/")
        assert answer.status_code == 401, wrong


def test_a_new_key_replaces_the_old_one_and_revoke_removes_it():
    make_user("ops", admin=True)
    first, second = issue("ops"), issue("ops")
    assert ApiToken.holder(first) is None
    assert ApiToken.holder(second).user.username == "ops"
    call_command("api_token", "ops", "--revoke", stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_an_inactive_users_key_is_refused():
    make_user("ops", admin=True, is_active=False)
    key = issue("ops")
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/reports/").status_code == 401


def test_an_unknown_user_is_a_clear_error():
    with pytest.raises(CommandError, match="There is no user named 'nobody'"):
        issue("nobody")


def test_the_migration_turns_keys_kept_in_clear_into_digests_and_drops_them():
    ops = make_user("ops", admin=True)
    key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, '
            "created timestamp with time zone NOT NULL, user_id integer NOT NULL)"
            if connection.vendor == "postgresql"
            else 'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, '
            "created datetime NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            'INSERT INTO authtoken_token ("key", created, user_id) VALUES (%s, %s, %s)',
            [key, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), ops.pk],
        )
    hashed_tokens.keys_to_digests(apps, SimpleNamespace(connection=connection))
    token = ApiToken.holder(key)
    assert token.user == ops
    assert token.created == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert "authtoken_token" not in connection.introspection.table_names()
