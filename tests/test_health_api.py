"""The Command API's check_health (XML, as BeyondTrust's clients read it) and GET /api/v1/health/.

Every answer is validated against the published schema and read the two ways
public clients read BeyondTrust's flat document (tests/command_api.py), for a
primary, a backup, an unpaired site and a site whose database fails.
"""

from __future__ import annotations

import datetime as dt
import uuid
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connection
from django.test import Client

from appliance.models import ApiToken, Heartbeat
from appliance.version import SOFTWARE_VERSION
from failover import health, shared_ip
from failover.models import FailoverState, Role, SharedIP, SyncRun
from tests.command_api import (
    HEALTH_CHECK_ORDER,
    NS,
    SCHEMA_FILE,
    as_dict,
    as_tree,
    children,
    error_text,
    schema,
)
from tests.conftest import bearer_client, make_api_account, make_user, paired_as
from tests.health_fixtures import make_heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.health_test_urls")]

COMMAND = "/api/command"
CHECK_HEALTH = f"{COMMAND}?action=check_health"
JSON_HEALTH = "/api/v1/health/"
SHARED = "198.51.100.50/24"
FORM = "application/x-www-form-urlencoded"
SYNCED_AT = dt.datetime(2026, 11, 30, 9, 15, 42, tzinfo=dt.UTC)


def token_client(user: User) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user)}")


@pytest.fixture
def monitor(db) -> Client:
    """A read-only API account's bearer token, as a monitoring script holds it."""
    return bearer_client(*make_api_account("monitoring"))


@pytest.fixture
def admin_token_client(admin_user: User) -> Client:
    return token_client(admin_user)


@pytest.fixture
def holding(settings, tmp_path, monkeypatch):
    """Shared IP configured; `hold(role)` makes the network worker reconcile for that role."""
    settings.SHARED_IP_DRIVER = "recording"
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr("failover.jobs.announce_shared_ip", lambda **_: None)
    SharedIP(enabled=True, address=SHARED, interface="lo").save()

    def hold(role: str) -> str:
        # As the network worker does after a role change (the peer already asked).
        return shared_ip.reconcile(peer_checked=True)

    return hold


def xml_health(client: Client) -> bytes:
    response = client.get(CHECK_HEALTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    assert response["Cache-Control"] == "no-store"
    return response.content


@pytest.mark.usefixtures("healthy_site")
def test_a_primary_that_holds_the_shared_ip_lists_it_and_its_backups_last_sync(
    monitor, settings, holding
):
    settings.APPLIANCE_NAME = "site-a"
    paired_as(Role.PRIMARY)
    FailoverState.objects.filter(pk=1).update(
        peer_last_sync_at=SYNCED_AT, peer_last_sync_status="succeeded"
    )
    assert holding(Role.PRIMARY) == "added"
    body = xml_health(monitor)

    doc = as_dict(body)["health_check"]
    assert doc["success"] == "1"
    assert doc["appliance"]["#text"] == "site-a"
    assert uuid.UUID(doc["appliance"]["@id"]) == uuid.UUID(settings.APPLIANCE_ID)
    assert doc["failover_role"] == "primary"
    assert doc["enabled_shared_ips"] == {"ip": "198.51.100.50"}
    assert doc["last_data_sync_time"] == {
        "@ts": str(int(SYNCED_AT.timestamp())),
        "#text": "2026-11-30T09:15:42+00:00",
    }
    assert doc["last_data_sync_status"] == "succeeded"
    assert "error_message" not in doc

    root = as_tree(body)
    assert root.tag == f"{{{NS['bt']}}}health_check"
    assert children(root) == [
        "appliance",
        "version",
        "success",
        "failover_role",
        "enabled_shared_ips",
        "last_data_sync_time",
        "last_data_sync_status",
    ]
    assert root.findtext("bt:version", namespaces=NS) == SOFTWARE_VERSION
    assert [ip.text for ip in root.findall("bt:enabled_shared_ips/bt:ip", NS)] == ["198.51.100.50"]
    synced = root.find("bt:last_data_sync_time", NS)
    assert dt.datetime.fromisoformat(synced.text) == SYNCED_AT
    assert int(synced.get("ts")) == int(SYNCED_AT.timestamp())


@pytest.mark.usefixtures("healthy_site")
def test_a_backup_holds_no_shared_ip_and_reports_its_own_last_sync(monitor, holding):
    paired_as(Role.BACKUP)
    assert holding(Role.BACKUP) == "in step"
    run, _ = SyncRun.request(SyncRun.Trigger.SCHEDULE, by="schedule")
    run.finish(SyncRun.Status.SUCCEEDED)
    run.refresh_from_db()
    body = xml_health(monitor)

    doc = as_dict(body)["health_check"]
    assert doc["failover_role"] == "backup"
    assert "enabled_shared_ips" not in doc
    assert doc["last_data_sync_status"] == "succeeded"
    assert int(doc["last_data_sync_time"]["@ts"]) == int(run.finished_at.timestamp())

    root = as_tree(body)
    assert root.find("bt:enabled_shared_ips", NS) is None
    assert root.findtext("bt:last_data_sync_status", namespaces=NS) == "succeeded"
    assert children(root) == [
        "appliance",
        "version",
        "success",
        "failover_role",
        "last_data_sync_time",
        "last_data_sync_status",
    ]


@pytest.mark.usefixtures("healthy_site")
def test_a_paired_site_that_never_synced_leaves_out_the_time_but_says_none(monitor):
    paired_as(Role.BACKUP)
    doc = as_dict(xml_health(monitor))["health_check"]
    assert "last_data_sync_time" not in doc
    assert doc["last_data_sync_status"] == "none"


@pytest.mark.usefixtures("healthy_site")
def test_an_unpaired_site_leaves_out_the_shared_ips_and_the_sync(monitor, settings):
    settings.APPLIANCE_NAME = "site-a"
    body = xml_health(monitor)
    doc = as_dict(body)["health_check"]
    assert doc.pop("@xmlns") == {"": NS["bt"]}
    assert doc == {
        "appliance": {"@id": settings.APPLIANCE_ID, "#text": "site-a"},
        "version": SOFTWARE_VERSION,
        "success": "1",
        "failover_role": "none",
    }
    assert children(as_tree(body)) == ["appliance", "version", "success", "failover_role"]


@pytest.mark.usefixtures("healthy_site")
def test_a_site_whose_database_fails_says_so_and_what_it_still_knows(monitor, monkeypatch, holding):
    paired_as(Role.PRIMARY)
    holding(Role.PRIMARY)
    real_health = health.site_health

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("could not connect to server: Connection refused")

    def with_the_database_down() -> health.SiteHealth:
        # The token was checked before: the database goes away while the report is made.
        with mock.patch.object(connection, "cursor", refuse):
            return real_health()

    monkeypatch.setattr("failover.api.views.site_health", with_the_database_down)
    body = xml_health(monitor)

    doc = as_dict(body)["health_check"]
    assert doc["success"] == "0"
    assert doc["error_message"].startswith("The database did not answer a query.")
    assert "Connection refused" in doc["error_message"]
    assert doc["failover_role"] == "unknown"
    # The network worker's record still says who holds the address.
    assert doc["enabled_shared_ips"] == {"ip": "198.51.100.50"}
    assert "last_data_sync_time" not in doc
    assert doc["last_data_sync_status"] == "unknown"

    root = as_tree(body)
    assert root.findtext("bt:success", namespaces=NS) == "0"
    assert children(root) == [
        "appliance",
        "version",
        "success",
        "error_message",
        "failover_role",
        "enabled_shared_ips",
        "last_data_sync_status",
    ]


def test_a_database_that_fails_before_the_credentials_are_checked_is_said_in_xml(
    monitor, monkeypatch
):
    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = monitor.get(CHECK_HEALTH)
    assert response.status_code == 503
    assert error_text(response.content).startswith(
        "This site's database does not answer, so the credentials cannot be checked."
    )


@pytest.mark.usefixtures("healthy_site")
def test_the_elements_come_in_beyondtrusts_order_whatever_is_left_out(monitor, holding):
    paired_as(Role.PRIMARY)
    holding(Role.PRIMARY)
    make_heartbeat("worker", age_seconds=45)
    FailoverState.objects.filter(pk=1).update(
        peer_last_sync_at=SYNCED_AT, peer_last_sync_status="failed"
    )
    assert children(as_tree(xml_health(monitor))) == HEALTH_CHECK_ORDER


@pytest.mark.usefixtures("healthy_site")
def test_a_stale_worker_is_success_0_with_an_error_message(monitor):
    make_heartbeat("worker", age_seconds=45)
    response = monitor.get(CHECK_HEALTH)
    assert response.status_code == 200
    doc = as_dict(response.content)["health_check"]
    assert doc["success"] == "0"
    assert doc["error_message"].startswith(
        "The Celery worker has not sent a heartbeat for 45 s. It should send one every 10 s"
    )


@pytest.mark.usefixtures("healthy_site")
def test_it_names_the_broker_and_where_it_is_when_redis_does_not_answer(
    monitor, settings, tmp_path
):
    settings.REDIS_URL = f"unix://{tmp_path}/absent.sock"
    doc = as_dict(xml_health(monitor))["health_check"]
    assert doc["success"] == "0"
    assert doc["error_message"].startswith("The broker (Redis) did not answer a PING within 1 s.")
    assert f"Redis at {tmp_path}/absent.sock:" in doc["error_message"]


@pytest.mark.usefixtures("healthy_site")
def test_it_lists_every_failed_check(monitor, settings, tmp_path):
    make_heartbeat("beat", age_seconds=600)
    settings.REDIS_URL = f"unix://{tmp_path}/absent.sock"
    message = as_dict(xml_health(monitor))["health_check"]["error_message"]
    assert "The Celery beat scheduler has not sent a heartbeat for 600 s." in message
    assert "The broker (Redis) did not answer" in message
    assert "worker" not in message


@pytest.mark.usefixtures("healthy_site")
def test_it_escapes_an_appliance_name_with_markup(monitor, settings):
    settings.APPLIANCE_NAME = 'edge "A" & <B>'
    assert as_tree(xml_health(monitor)).findtext("bt:appliance", namespaces=NS) == (
        'edge "A" & <B>'
    )


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_a_form_encoded_post_as_beyondtrust_does(monitor):
    response = monitor.post(COMMAND, "action=check_health", content_type=FORM)
    assert response.status_code == 200
    assert as_dict(response.content)["health_check"]["success"] == "1"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [('{"action": "check_health"}', "application/json"), ({"action": "check_health"}, None)],
    ids=["json", "multipart"],
)
def test_it_refuses_a_post_that_is_not_form_encoded_in_xml(monitor, body, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    response = monitor.post(COMMAND, body, **kwargs)
    assert response.status_code == 415
    assert error_text(response.content).startswith("Unsupported media type")


@pytest.mark.usefixtures("healthy_site")
def test_an_administrators_api_token_works_too(admin_token_client):
    assert as_dict(xml_health(admin_token_client))["health_check"]["success"] == "1"


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_xml_whatever_the_client_accepts(monitor):
    response = monitor.get(f"{CHECK_HEALTH}&format=json", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert as_dict(response.content)["health_check"]["success"] == "1"


def test_it_refuses_a_request_without_credentials_with_401_in_xml(anon_client):
    response = anon_client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert error_text(response.content) == "Authentication credentials were not provided."


def test_it_refuses_an_unknown_bearer_token_saying_how_to_get_one(db):
    response = Client(HTTP_AUTHORIZATION="Bearer not-a-token-it-knows").get(CHECK_HEALTH)
    assert response.status_code == 401
    assert error_text(response.content) == (
        "The access token is invalid. Request a new one at /oauth2/token."
    )


def test_it_refuses_an_invalid_api_token_with_401_in_xml(db):
    client = Client(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert error_text(response.content) == "Invalid token."


def test_it_refuses_a_token_without_administrative_rights_with_403_in_xml(regular_user):
    response = token_client(regular_user).get(CHECK_HEALTH)
    assert response.status_code == 403
    assert "administrative rights" in error_text(response.content)


def test_it_refuses_an_administrators_browser_session(admin_client):
    response = admin_client.get(CHECK_HEALTH)
    assert response.status_code == 401
    assert error_text(response.content) == "Authentication credentials were not provided."


def test_it_answers_an_unknown_action_with_400_naming_the_valid_ones(monitor):
    response = monitor.get(f"{COMMAND}?action=reboot")
    assert response.status_code == 400
    assert error_text(response.content) == (
        "Unknown action 'reboot'. Valid actions: check_health, set_failover_role."
    )


def test_it_answers_a_missing_action_with_400_naming_the_valid_ones(monitor):
    response = monitor.get(COMMAND)
    assert response.status_code == 400
    assert error_text(response.content) == (
        "No action given. Valid actions: check_health, set_failover_role."
    )


def test_it_refuses_other_methods_in_xml(monitor):
    response = monitor.put(CHECK_HEALTH)
    assert response.status_code == 405
    assert error_text(response.content) == 'Method "PUT" not allowed.'


def test_it_publishes_its_schema_to_anyone_as_beyondtrust_does(anon_client):
    response = anon_client.get("/api/command.xsd")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    published = response.content.decode()
    assert published == SCHEMA_FILE.read_text()
    assert schema(published).target_namespace == NS["bt"]


def test_the_schema_refuses_a_document_that_breaks_beyondtrusts_shape():
    nested = (
        f'<health_check xmlns="{NS["bt"]}"><appliance id="{uuid.uuid4()}">'
        "<version>1</version></appliance></health_check>"
    )
    assert not schema().is_valid(nested)
    no_namespace = "<success>Successfully changed role.</success>"
    assert not schema().is_valid(no_namespace)
    out_of_order = (
        f'<health_check xmlns="{NS["bt"]}"><appliance id="{uuid.uuid4()}">a</appliance>'
        "<success>1</success><version>1</version><failover_role>none</failover_role>"
        "</health_check>"
    )
    assert not schema().is_valid(out_of_order)


@pytest.mark.usefixtures("healthy_site")
def test_the_json_report_holds_the_same_facts(admin_token_client, settings):
    settings.APPLIANCE_NAME = "site-a"
    response = admin_token_client.get(JSON_HEALTH)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "appliance_id": settings.APPLIANCE_ID,
        "appliance": "site-a",
        "version": SOFTWARE_VERSION,
        "success": True,
        "error_message": "",
        "errors": [],
        "failover_role": "none",
        "enabled_shared_ips": [],
        "last_data_sync_time": None,
        "last_data_sync_status": "none",
        "replication": None,
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


@pytest.mark.usefixtures("healthy_site")
def test_the_json_report_is_open_to_full_api_accounts_only(db):
    assert bearer_client(*make_api_account("runbook", full=True)).get(JSON_HEALTH).status_code == (
        200
    )
    response = bearer_client(*make_api_account("monitoring")).get(JSON_HEALTH)
    assert response.status_code == 403
    assert "full access" in response.json()["detail"]


def test_the_json_report_refuses_anonymous_callers(anon_client):
    assert anon_client.get(JSON_HEALTH).status_code == 401


def test_the_json_report_refuses_accounts_without_administrative_rights(db):
    response = token_client(make_user("operator")).get(JSON_HEALTH)
    assert response.status_code == 403


@pytest.mark.usefixtures("healthy_site")
def test_a_replicating_backup_adds_its_lag_after_beyondtrusts_elements(monitor):
    from failover.models import SyncCursor, SyncSource

    paired_as(Role.BACKUP)
    now = dt.datetime.now(dt.UTC)
    SyncCursor.objects.create(
        pk=1, generation=SyncSource.load().generation, seq=7, primary_latest=9,
        pending_since=now - dt.timedelta(seconds=2), contact_at=now,
    )  # fmt: skip
    body = xml_health(monitor)
    doc = as_dict(body)["health_check"]
    assert (doc["replication_changes_behind"], doc["replication_connected"]) == ("2", "1")
    assert 1 <= float(doc["replication_seconds_behind"]) < 60
    assert children(as_tree(body))[-3:] == [
        "replication_changes_behind", "replication_seconds_behind", "replication_connected",
    ]  # fmt: skip
