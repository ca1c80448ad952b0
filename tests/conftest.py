"""Personas and factories shared by every test."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

# Shared fixtures: a real embedded Redis (one per session) and a healthy site.
from tests.health_fixtures import healthy_site  # noqa: F401
from tests.redis_fixture import peer_redis, redis_server  # noqa: F401

DEFAULT_PASSWORD = "correct horse battery staple 42"


def make_user(username: str = "alice", *, admin: bool = False, **fields: object) -> User:
    user = User(username=username, is_superuser=admin, is_staff=admin, **fields)
    user.set_password(DEFAULT_PASSWORD)
    user.save()
    return user


@pytest.fixture
def admin_user(db) -> User:
    return make_user("admin", admin=True, email="admin@example.com")


@pytest.fixture
def regular_user(db) -> User:
    return make_user("rep", email="rep@example.com", first_name="Rita", last_name="Rep")


@pytest.fixture
def admin_client(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def user_client(regular_user: User) -> Client:
    client = Client()
    client.force_login(regular_user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def anon_client() -> Client:
    return Client()
