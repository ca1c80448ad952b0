"""The Command API's check_health (XML) and its JSON twin, GET /api/v1/health/."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from appliance.models import Heartbeat
from appliance.version import SOFTWARE_VERSION
from failover.models import FailoverState, Role
from tests.conftest import make_user
from tests.health_fixtures import make_heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.health_test_urls")]

COMMAND = "/api/command"
CHECK_HEALTH = f"{COMMAND}?action=check_health"
JSON_HEALTH = "/api/v1/health/"
APPLIANCE_CHILDREN = [
    "version",
    "success",
    "error_message",
    "failover_role",
    "enabled_shared_ips",
    "last_data_sync_time",
    "last_data_sync_status",
]


def token_client(user: User) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


@pytest.fixture
def admin_token_client(admin_user: User) -> Client:
    return token_client(admin_user)


def appliance_element(response) -> ET.Element:
    assert response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "health_check"
    [appliance] = list(root)
    assert appliance.tag == "appliance"
    return appliance


def xml_error(response) -> str:
    assert response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "error"
    return root.text or ""


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_check_health_with_beyondtrusts_element_names(admin_token_client, settings):
    settings.APPLIANCE_NAME = "site-a"
    response = admin_token_client.get(CHECK_HEALTH)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    appliance = appliance_element(response)
    assert appliance.attrib == {"id": "site-a"}
    assert [child.tag for child in appliance] == APPLIANCE_CHILDREN
    assert appliance.findtext("version") == SOFTWARE_VERSION
    assert appliance.findtext("success") == "1"
    assert appliance.findtext("error_message") == ""
    assert appliance.findtext("failover_role") == "none"
    assert list(appliance.find("enabled_shared_ips")) == []
    assert appliance.findtext("last_data_sync_status") == "none"


@pytest.mark.usefixtures("healthy_site")
def test_it_leaves_the_sync_time_empty_and_without_ts_when_the_site_never_synced(
    admin_token_client,
):
    synced = appliance_element(admin_token_client.get(CHECK_HEALTH)).find("last_data_sync_time")
    assert synced.attrib == {}
    assert not synced.text


@pytest.mark.usefixtures("healthy_site")
def test_it_reports_the_role_from_the_failover_state(admin_token_client):
    FailoverState.objects.create(pk=1, role=Role.BACKUP, epoch=3)
    appliance = appliance_element(admin_token_client.get(CHECK_HEALTH))
    assert appliance.findtext("failover_role") == "backup"


@pytest.mark.usefixtures("healthy_site")
def test_it_escapes_an_appliance_name_with_markup(admin_token_client, settings):
    settings.APPLIANCE_NAME = 'edge "A" & <B>'
    appliance = appliance_element(admin_token_client.get(CHECK_HEALTH))
    assert appliance.get("id") == 'edge "A" & <B>'


@pytest.mark.usefixtures("healthy_site")
def test_it_reports_a_stale_worker_with_success_0(admin_token_client):
    make_heartbeat("worker", age_seconds=45)
    response = admin_token_client.get(CHECK_HEALTH)
    assert response.status_code == 200
    appliance = appliance_element(response)
    assert appliance.findtext("success") == "0"
    assert appliance.findtext("error_message").startswith(
        "The Celery worker has not sent a heartbeat for 45 s. It should send one every 10 s"
    )


@pytest.mark.usefixtures("healthy_site")
def test_it_names_the_broker_and_where_it_is_when_redis_does_not_answer(
    admin_token_client, settings, tmp_path
):
    settings.REDIS_URL = f"unix://{tmp_path}/absent.sock"
    appliance = appliance_element(admin_token_client.get(CHECK_HEALTH))
    assert appliance.findtext("success") == "0"
    message = appliance.findtext("error_message")
    assert message.startswith("The broker (Redis) did not answer a PING within 1 s.")
    assert f"Redis at {tmp_path}/absent.sock:" in message


@pytest.mark.usefixtures("healthy_site")
def test_it_lists_every_failed_check(admin_token_client, settings, tmp_path):
    make_heartbeat("beat", age_seconds=600)
    settings.REDIS_URL = f"unix://{tmp_path}/absent.sock"
    message = appliance_element(admin_token_client.get(CHECK_HEALTH)).findtext("error_message")
    assert "The Celery beat scheduler has not sent a heartbeat for 600 s." in message
    assert "The broker (Redis) did not answer" in message
    assert "worker" not in message


def test_it_refuses_a_request_without_a_token_with_401_in_xml(anon_client):
    response = anon_client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert xml_error(response) == "Authentication credentials were not provided."


def test_it_refuses_an_invalid_token_with_401_in_xml(db):
    client = Client(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert xml_error(response) == "Invalid token."


def test_it_refuses_a_token_without_administrative_rights_with_403_in_xml(regular_user):
    response = token_client(regular_user).get(CHECK_HEALTH)
    assert response.status_code == 403
    assert "administrative rights" in xml_error(response)


def test_it_refuses_an_administrators_browser_session(admin_client):
    response = admin_client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert xml_error(response) == "Authentication credentials were not provided."


def test_it_answers_an_unknown_action_with_400_naming_the_valid_ones(admin_token_client):
    response = admin_token_client.get(f"{COMMAND}?action=reboot")
    assert response.status_code == 400
    assert xml_error(response) == (
        "Unknown action 'reboot'. Valid actions: check_health, set_failover_role."
    )


def test_it_answers_a_missing_action_with_400_naming_the_valid_ones(admin_token_client):
    response = admin_token_client.get(COMMAND)
    assert response.status_code == 400
    assert xml_error(response) == "No action given. Valid actions: check_health, set_failover_role."


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_xml_whatever_the_client_accepts(admin_token_client):
    response = admin_token_client.get(f"{CHECK_HEALTH}&format=json", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert appliance_element(response).findtext("success") == "1"


def test_it_refuses_other_methods_in_xml(admin_token_client):
    response = admin_token_client.post(CHECK_HEALTH)
    assert response.status_code == 405
    assert xml_error(response) == 'Method "POST" not allowed.'


@pytest.mark.usefixtures("healthy_site")
def test_the_json_report_holds_the_same_facts(admin_token_client, settings):
    settings.APPLIANCE_NAME = "site-a"
    response = admin_token_client.get(JSON_HEALTH)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "appliance_id": "site-a",
        "version": SOFTWARE_VERSION,
        "success": True,
        "error_message": "",
        "errors": [],
        "failover_role": "none",
        "enabled_shared_ips": [],
        "last_data_sync_time": None,
        "last_data_sync_status": "none",
    }


@pytest.mark.usefixtures("healthy_site")
def test_the_json_report_lists_a_worker_that_never_sent_a_heartbeat(admin_token_client):
    Heartbeat.objects.filter(component="worker").delete()
    body = admin_token_client.get(JSON_HEALTH).json()
    assert body["success"] is False
    assert body["errors"] == [
        "The Celery worker has not sent a heartbeat yet. It should send one every 10 s; "
        "is it running?"
    ]
    assert body["error_message"] == body["errors"][0]


def test_the_json_report_refuses_anonymous_callers(anon_client):
    assert anon_client.get(JSON_HEALTH).status_code == 401


def test_the_json_report_refuses_accounts_without_administrative_rights(db):
    response = token_client(make_user("operator")).get(JSON_HEALTH)
    assert response.status_code == 403
