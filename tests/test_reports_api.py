import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from appliance.models import ApiToken, Report
from tests.test_reports_views import MARCH_10, make_report

LIST = reverse("api:report-list")

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user)}")
    return client


@pytest.fixture
def api(admin_user) -> APIClient:
    return token_client(admin_user)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def detail_url(uuid) -> str:
    return reverse("api:report-detail", args=[uuid])


def new_report(**fields: object) -> dict:
    body = {
        "representative": "Rita Alvarez",
        "customer_name": "Alice Baker",
        "computer_name": "LAPTOP-A1",
        "started_at": "2025-03-10T09:00:00Z",
        "ended_at": "2025-03-10T09:12:30Z",
        "outcome": "resolved",
        "chat_transcript": "[09:00:00] Rita Alvarez: Hello.\n[09:12:30] System: Ended.",
    }
    body.update(fields)
    return body


def test_it_refuses_requests_without_credentials_with_401():
    make_report()
    response = APIClient().get(LIST)
    assert response.status_code == 401
    # API accounts (OAuth 2.0 bearer tokens) are asked first; API tokens work as well.
    assert response["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert APIClient().post(LIST, new_report(), format="json").status_code == 401
    assert Report.objects.count() == 1


def test_it_refuses_an_unknown_token_with_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.get(LIST)
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_it_refuses_the_token_of_an_account_without_administrative_rights_with_403(regular_user):
    client = token_client(regular_user)
    report = make_report()
    for response in (
        client.get(LIST),
        client.get(detail_url(report.uuid)),
        client.post(LIST, new_report(), format="json"),
    ):
        assert response.status_code == 403
        assert "administrative rights" in response.json()["detail"]
    assert Report.objects.count() == 1


def test_it_lists_reports_newest_first_to_an_administrator_token(api):
    make_report(customer_name="Older")
    an_hour_later = MARCH_10 + dt.timedelta(hours=1)
    newer = make_report(
        customer_name="Newer",
        started_at=an_hour_later,
        ended_at=an_hour_later + dt.timedelta(minutes=12, seconds=30),
    )
    response = api.get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [item["customer_name"] for item in body["results"]] == ["Newer", "Older"]
    first = body["results"][0]
    assert first["uuid"] == str(newer.uuid)
    assert first["duration_seconds"] == 750
    assert first["has_recording"] is False
    assert first["recording_url"] is None
    assert "recording" not in first


def test_it_applies_the_same_filters_as_the_reports_page(api):
    make_report(customer_name="Match", representative="Tom Becker", outcome="escalated")
    make_report(customer_name="Wrong outcome", representative="Tom Becker")
    two_days_earlier = MARCH_10 - dt.timedelta(days=2)
    make_report(
        customer_name="Too early",
        representative="Tom Becker",
        outcome="escalated",
        started_at=two_days_earlier,
        ended_at=two_days_earlier + dt.timedelta(minutes=5),
    )
    response = api.get(
        LIST,
        {"q": "becker", "outcome": "escalated", "started_from": "2025-03-09", "sort": "started_at"},
    )
    assert [item["customer_name"] for item in response.json()["results"]] == ["Match"]


def test_bad_filters_give_400_with_a_reason_per_parameter(api):
    response = api.get(
        LIST, {"started_from": "10/03/2025", "outcome": "exploded", "sort": "customer"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["started_from"] == ["Enter a date as YYYY-MM-DD, e.g. 2025-03-31."]
    assert body["outcome"][0].startswith("exploded is not an outcome")
    assert "sort" in body


def test_an_end_date_before_the_start_date_is_a_400(api):
    response = api.get(LIST, {"started_from": "2025-03-10", "started_to": "2025-03-09"})
    assert response.status_code == 400
    assert "before the start date" in response.json()["started_to"][0]


def test_it_pages_fifty_reports_at_a_time_and_keeps_the_filters(api):
    for minute in range(60):
        make_report(started_at=MARCH_10 + dt.timedelta(minutes=minute))
    body = api.get(LIST, {"outcome": "resolved"}).json()
    assert body["count"] == 60
    assert len(body["results"]) == 50
    assert "outcome=resolved" in body["next"]
    assert "page=2" in body["next"]
    assert len(api.get(body["next"]).json()["results"]) == 10


def test_it_creates_a_report_from_json(api):
    response = api.post(LIST, new_report(), format="json")
    assert response.status_code == 201, response.json()
    report = Report.objects.get(uuid=response.json()["uuid"])
    assert report.customer_name == "Alice Baker"
    assert report.started_at == MARCH_10
    assert report.duration == dt.timedelta(minutes=12, seconds=30)
    assert "\n" in report.chat_transcript
    assert not report.recording


def test_it_ignores_a_client_supplied_uuid(api):
    chosen = "00000000-0000-4000-8000-000000000000"
    response = api.post(LIST, new_report(uuid=chosen), format="json")
    assert response.status_code == 201
    assert response.json()["uuid"] != chosen


def test_it_refuses_a_report_that_ends_before_it_starts(api):
    response = api.post(LIST, new_report(ended_at="2025-03-10T08:59:59Z"), format="json")
    assert response.status_code == 400
    assert response.json()["ended_at"] == [
        "The session cannot end (2025-03-10T08:59:59+00:00) before it started "
        "(2025-03-10T09:00:00+00:00); check both times and their UTC offsets."
    ]
    assert not Report.objects.exists()


def test_it_names_each_missing_or_invalid_field(api):
    body = new_report(outcome="exploded", started_at="yesterday")
    del body["representative"]
    response = api.post(LIST, body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"representative", "outcome", "started_at"}
    assert errors["representative"] == ["This field is required."]
    assert "not a valid choice" in errors["outcome"][0]
    assert "Datetime has wrong format" in errors["started_at"][0]


def test_it_creates_a_report_with_an_uploaded_recording(api, media):
    upload = SimpleUploadedFile("session.webm", b"recorded bytes", content_type="video/webm")
    response = api.post(LIST, {**new_report(), "recording": upload}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["has_recording"] is True
    download = reverse("api:report-recording", args=[body["uuid"]])
    assert body["recording_url"] == f"http://testserver{download}"
    assert "recordings/" not in response.content.decode()
    report = Report.objects.get(uuid=body["uuid"])
    assert report.recording.read() == b"recorded bytes"

    response = api.get(download)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"recorded bytes"
    assert response["Content-Disposition"].startswith("attachment;")


def test_the_recording_download_needs_an_administrator(regular_user, media):
    upload = SimpleUploadedFile("session.webm", b"recorded bytes")
    report = make_report(recording=upload)
    download = reverse("api:report-recording", args=[report.uuid])
    assert APIClient().get(download).status_code == 401
    assert token_client(regular_user).get(download).status_code == 403


def test_a_report_without_a_recording_has_nothing_to_download(api):
    report = make_report()
    response = api.get(reverse("api:report-recording", args=[report.uuid]))
    assert response.status_code == 404
    assert response.json()["detail"] == "This report has no recording."


def test_it_retrieves_one_report_by_uuid(api):
    report = make_report(customer_name="Alice Baker")
    response = api.get(detail_url(report.uuid))
    assert response.status_code == 200
    assert response.json()["customer_name"] == "Alice Baker"
    assert response.json()["started_at"] == "2025-03-10T09:00:00Z"


def test_an_unknown_uuid_is_not_found(api):
    assert api.get(detail_url(Report().uuid)).status_code == 404


def test_a_signed_in_administrator_can_read_the_api_with_the_session(admin_client):
    make_report()
    assert admin_client.get(LIST).status_code == 200


def test_the_schema_describes_the_report_endpoints_without_warnings(tmp_path):
    schema = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema))
    text = schema.read_text()
    for path in (
        "/api/v1/reports/:",
        "/api/v1/reports/{uuid}/:",
        "/api/v1/reports/{uuid}/recording/:",
    ):
        assert path in text
    assert "name: started_from" in text
