"""Personas and factories shared by every test."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth.models import User
from django.test import Client

from appliance.models import ApiAccount

# Shared fixtures: a real embedded Redis (one per session) and a healthy site.
from tests.health_fixtures import healthy_site  # noqa: F401
from tests.redis_fixture import peer_redis, redis_server  # noqa: F401

DEFAULT_PASSWORD = "correct horse battery staple 42"


def make_user(username: str = "alice", *, admin: bool = False, **fields: object) -> User:
    user = User(username=username, is_superuser=admin, is_staff=admin, **fields)
    user.set_password(DEFAULT_PASSWORD)
    user.save()
    return user


def paired_as(role: str, *, peer_name: str = "site-b", peer_host: str = "192.0.2.20"):
    """This site in a relationship with a peer that does not run (in-process tests),
    at an epoch above any it has seen. Returns the FailoverState."""
    from failover.models import FailoverState

    state = FailoverState.load()
    state.establish(
        role,
        epoch=state.epoch + 1,
        peer_name=peer_name,
        peer_host=peer_host,
        peer_port=443,
        peer_scheme="https",
        peer_fingerprint="",
    )
    return state


def make_api_account(
    name: str = "monitoring", *, full: bool = False, enabled: bool = True
) -> tuple[ApiAccount, str]:
    """An API account (read-only unless `full`) and its client secret, as the page shows it once."""
    account = ApiAccount(
        name=name,
        access=ApiAccount.Access.FULL if full else ApiAccount.Access.READ_ONLY,
        enabled=enabled,
    )
    secret = account.set_new_secret()
    account.save()
    return account, secret


def basic_credentials(client_id: str, secret: str) -> str:
    """The HTTP Basic header value BeyondTrust's clients send to /oauth2/token."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def bearer_client(account: ApiAccount, secret: str) -> Client:
    """A client holding a bearer token that `account` got from /oauth2/token."""
    response = Client().post(
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_credentials(account.client_id, secret),
    )
    assert response.status_code == 200, response.content
    return Client(HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")


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


# The longest test files first, longest first (as measured with --durations=0 in
# one run of the whole suite, docs/BENCHMARKS.md section 6; files added since then by
# what they run: power-off trials, site start-ups, real timers). Each pytest-xdist worker
# takes whole files (--dist loadfile, with --no-loadscope-reorder so that this order
# holds) as it frees up: with the long ones handed out first, no late long file
# stretches the run while the other workers stand idle.
SLOWEST_FILES = (
    "test_lab_synchronous.py",
    "test_failover_browser.py",
    "test_sync_faults.py",
    "test_lab_replication.py",
    "test_rolling_upgrade.py",
    "test_pairing.py",
    "test_pairing_browser.py",
    "test_lab_sync.py",
    "test_lab_failover.py",
    "test_lab_methods.py",
    "test_failover_sites.py",
    "test_lab_clock.py",
    "test_lab_walkthrough.py",
    "test_replication_sites.py",
    "test_command_api_sites.py",
    "test_lab_command_api.py",
    "test_sync.py",
    "test_sync_browser.py",
    "test_site_processes.py",
    "test_scheduled_backup_site.py",
    "test_peer_values_sites.py",
    "test_proxy_site.py",
    "test_restore_crash.py",
)
SLOW_MARKS = ("browser", "processes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def weight(item: pytest.Item) -> int:
        name = item.path.name
        if name in SLOWEST_FILES:
            return SLOWEST_FILES.index(name)
        marks = {mark.name for mark in item.iter_markers()}
        slow = next((i for i, mark in enumerate(SLOW_MARKS) if mark in marks), len(SLOW_MARKS))
        return len(SLOWEST_FILES) + slow

    items.sort(key=weight)  # stable: a file's tests stay together and in order
