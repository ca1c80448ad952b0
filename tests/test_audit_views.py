"""Management > Audit trail and GET /api/v1/audit/: filters, paging, CSV export, permissions."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from appliance.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db
AUDIT = reverse("appliance:audit")
EXPORT = reverse("appliance:audit_export")
API = "/api/v1/audit/"


def make_event(actor: str, action: str, minutes_ago: int, detail: str = "") -> AuditEvent:
    event = AuditEvent.record(actor, action, detail)
    event.at = timezone.now() - dt.timedelta(minutes=minutes_ago)
    event.save()
    return event


@pytest.fixture
def trail():
    make_event("alice", "site_settings.changed", 120, "Changed: site name.")
    make_event("bob", "failover.role_changed", 60, "site-a became primary (epoch 4)")
    make_event("alice", "failover.role_changed", 30, "site-a became backup (epoch 5)")
    make_event("system", "peer.auth_refused", 5, '=HYPERLINK("http://x")')


def test_anonymous_users_go_to_the_login_and_non_administrators_are_refused(
    anon_client, user_client
):
    assert anon_client.get(AUDIT)["Location"].startswith("/login")
    assert user_client.get(AUDIT).status_code == 403
    assert user_client.get(EXPORT).status_code == 403


def test_the_page_lists_every_event_newest_first(admin_client, trail):
    page = admin_client.get(AUDIT)
    assert page.status_code == 200
    events = list(page.context["page"].object_list)
    assert [e.actor for e in events] == ["system", "alice", "bob", "alice"]
    assert "Audit trail" in page.content.decode()


def test_it_filters_by_user_action_and_time(admin_client, trail):
    page = admin_client.get(AUDIT, {"user": "ALICE", "action": "failover.role_changed"})
    assert [e.detail for e in page.context["page"].object_list] == [
        "site-a became backup (epoch 5)"
    ]
    since = timezone.localtime() - dt.timedelta(minutes=90)
    page = admin_client.get(AUDIT, {"since": since.strftime("%Y-%m-%dT%H:%M")})
    assert [e.actor for e in page.context["page"].object_list] == ["system", "alice", "bob"]
    until = timezone.localtime() - dt.timedelta(minutes=45)
    page = admin_client.get(AUDIT, {"until": until.strftime("%Y-%m-%dT%H:%M")})
    assert [e.actor for e in page.context["page"].object_list] == ["bob", "alice"]


def test_bad_filters_say_what_to_fix_and_list_nothing(admin_client, trail):
    page = admin_client.get(AUDIT, {"action": "nonsense", "since": "yesterday"})
    assert page.status_code == 400
    text = page.content.decode()
    assert "nonsense is not an action in this audit trail; choose one of" in text
    assert "Not a time." in text


def test_pages_hold_fifty_events(admin_client):
    for minute in range(120):
        make_event("bulk", "reports.exported", minute)
    first = admin_client.get(AUDIT, {"user": "bulk"})
    assert len(first.context["page"].object_list) == 50
    assert first.context["page"].paginator.num_pages == 3
    third = admin_client.get(AUDIT, {"user": "bulk", "page": "3"})
    assert len(third.context["page"].object_list) == 20
    assert "user=bulk&amp;page=2" in third.content.decode()


def test_the_export_is_the_filtered_trail_as_csv_and_is_itself_audited(admin_client, trail):
    response = admin_client.get(EXPORT, {"action": "failover.role_changed"})
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "site", "user", "action", "detail"]
    assert [row[2] for row in rows[1:]] == ["alice", "bob"]
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor == "admin"
    assert "action=failover.role_changed" in exported.detail


def test_the_export_neutralises_cells_a_spreadsheet_would_run(admin_client, trail):
    response = admin_client.get(EXPORT, {"user": "system"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][4].startswith("'=HYPERLINK")


def test_an_export_with_bad_filters_goes_back_to_the_page(admin_client):
    response = admin_client.get(EXPORT, {"until": "never"})
    assert response.status_code == 302
    assert response["Location"].startswith(AUDIT)


def test_the_status_page_links_to_the_whole_trail(admin_client, trail):
    page = admin_client.get(reverse("appliance:status")).content.decode()
    assert f'href="{AUDIT}"' in page


@pytest.fixture
def api(admin_user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(admin_user)}")
    return client


def test_the_api_serves_the_same_events_and_filters(api, trail):
    everything = api.get(API).json()
    assert everything["count"] == 4
    assert everything["results"][0]["user"] == "system"
    assert set(everything["results"][0]) == {"id", "at", "site", "user", "action", "detail"}
    filtered = api.get(API, {"user": "alice", "action": "failover.role_changed"}).json()
    assert [event["detail"] for event in filtered["results"]] == ["site-a became backup (epoch 5)"]


def test_the_api_refuses_bad_filters_with_a_reason_per_parameter(api, trail):
    response = api.get(API, {"action": "nonsense", "until": "soon"})
    assert response.status_code == 400
    assert "nonsense is not an action" in response.json()["action"][0]
    assert "Not a time" in response.json()["until"][0]


def test_the_api_is_for_administrators_only(regular_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(regular_user)}")
    assert client.get(API).status_code == 403
    assert APIClient().get(API).status_code == 401
