"""set_failover_role through the Command API (XML) and /api/v1/ (JSON)."""

import xml.etree.ElementTree as ET

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from failover.models import FailoverState, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_client(admin_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    return client


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("failover.tasks.change_role.delay", lambda *args: calls.append(args))
    return calls


def pair_as(role):
    FailoverState.load().establish(
        role, epoch=3, peer_name="site-b", peer_host="192.0.2.20", peer_port=443,
        peer_scheme="https", peer_fingerprint="",
    )  # fmt: skip


def test_the_backup_becomes_primary_with_a_final_sync_through_the_command_api(token_client, queued):
    pair_as(Role.BACKUP)
    response = token_client.get(
        "/api/command", {"action": "set_failover_role", "role": "primary", "data_sync_first": "1"}
    )
    assert response.status_code == 202
    root = ET.fromstring(response.content)
    assert root.tag == "set_failover_role"
    assert root.findtext("success") == "1"
    assert queued == [("become_primary", "admin", True)]


def test_the_primary_becomes_backup_with_force_through_json(token_client, queued):
    pair_as(Role.PRIMARY)
    response = token_client.post(
        "/api/v1/failover/role/", {"role": "backup", "force": True}, format="json"
    )
    assert response.status_code == 202
    assert queued == [("become_backup", "admin", True)]


@pytest.mark.parametrize(
    ("role", "paired_as", "message"),
    [
        ("leader", Role.BACKUP, "role must be primary or backup"),
        ("primary", Role.PRIMARY, "already primary"),
        ("primary", None, "not paired"),
    ],
)
def test_a_wrong_request_is_refused_and_nothing_is_queued(
    token_client, queued, role, paired_as, message
):
    if paired_as:
        pair_as(paired_as)
    response = token_client.get("/api/command", {"action": "set_failover_role", "role": role})
    assert response.status_code == 400
    assert message in ET.fromstring(response.content).text
    assert queued == []


def test_a_non_administrator_token_is_refused(user_client, regular_user, queued):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=regular_user).key}")
    response = client.post("/api/v1/failover/role/", {"role": "primary"}, format="json")
    assert response.status_code == 403
    assert queued == []
