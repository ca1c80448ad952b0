import csv
import datetime as dt
import io
import re

import pytest
from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.urls import reverse

from appliance.models import AuditEvent, Report, SiteSettings

LIST = reverse("appliance:reports:list")
EXPORT = reverse("appliance:reports:export")
MARCH_10 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


def make_report(**fields: object) -> Report:
    values = {
        "representative": "Rita Alvarez",
        "customer_name": "Alice Baker",
        "computer_name": "LAPTOP-A1",
        "started_at": MARCH_10,
        "ended_at": MARCH_10 + dt.timedelta(minutes=12, seconds=30),
        "outcome": Report.Outcome.RESOLVED,
        "chat_transcript": "[09:00:00] Rita Alvarez: Hello Alice.\n[09:12:30] System: Ended.",
    }
    values.update(fields)
    return Report.objects.create(**values)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def detail_url(report: Report) -> str:
    return reverse("appliance:reports:detail", args=[report.uuid])


def recording_url(report: Report) -> str:
    return reverse("appliance:reports:recording", args=[report.uuid])


def listed_customers(response) -> list[str]:
    return [report.customer_name for report in response.context["page"]]


def export_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_it_sends_anonymous_users_to_login(anon_client):
    report = make_report()
    for url in (LIST, EXPORT, detail_url(report), recording_url(report)):
        response = anon_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login"), url


def test_it_lists_reports_to_users_without_administrative_rights(user_client):
    make_report(customer_name="Alice Baker")
    response = user_client.get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="reports-table"' in page
    assert 'data-testid="reports-filters"' in page
    assert 'data-testid="reports-export"' in page
    assert "Alice Baker" in page


def test_it_lists_reports_to_administrators(admin_client):
    make_report(customer_name="Alice Baker")
    assert listed_customers(admin_client.get(LIST)) == ["Alice Baker"]


def test_it_says_so_when_there_are_no_reports(user_client):
    assert "No reports yet." in user_client.get(LIST).content.decode()


def test_the_search_matches_customer_representative_and_computer_names(user_client):
    make_report(customer_name="Zoe Quispe")
    make_report(representative="Tom Becker", customer_name="By representative")
    make_report(computer_name="WS-QUIS-01", customer_name="By computer")
    make_report(customer_name="Nobody")
    response = user_client.get(LIST, {"q": "quis"})
    assert sorted(listed_customers(response)) == ["By computer", "Zoe Quispe"]
    response = user_client.get(LIST, {"q": "becker"})
    assert listed_customers(response) == ["By representative"]


def test_it_filters_by_representative_ignoring_case(user_client):
    make_report(representative="Tom Becker", customer_name="Tom's")
    make_report(representative="Tom Beckers", customer_name="Not an exact match")
    response = user_client.get(LIST, {"representative": "tom becker"})
    assert listed_customers(response) == ["Tom's"]
    assert "matching the filters" in response.content.decode()


def test_it_filters_by_outcome(user_client):
    make_report(outcome=Report.Outcome.ESCALATED, customer_name="Escalated one")
    make_report(outcome=Report.Outcome.RESOLVED, customer_name="Resolved one")
    response = user_client.get(LIST, {"outcome": "escalated"})
    assert listed_customers(response) == ["Escalated one"]


def test_the_date_filters_include_the_whole_last_day(user_client):
    make_report(started_at=MARCH_10 - dt.timedelta(days=1), customer_name="Day before")
    make_report(started_at=MARCH_10.replace(hour=0), customer_name="First minute")
    make_report(started_at=MARCH_10.replace(hour=23, minute=59), customer_name="Last minute")
    make_report(started_at=MARCH_10 + dt.timedelta(days=1), customer_name="Day after")
    response = user_client.get(LIST, {"started_from": "2025-03-10", "started_to": "2025-03-10"})
    assert listed_customers(response) == ["Last minute", "First minute"]


def test_the_date_filters_are_days_in_the_site_time_zone(user_client):
    SiteSettings(time_zone="Europe/Berlin").save()
    # 23:30 UTC on 10 March is 00:30 on 11 March in Berlin.
    make_report(started_at=MARCH_10.replace(hour=23, minute=30), customer_name="Late")
    on_the_10th = user_client.get(LIST, {"started_from": "2025-03-10", "started_to": "2025-03-10"})
    on_the_11th = user_client.get(LIST, {"started_from": "2025-03-11", "started_to": "2025-03-11"})
    assert listed_customers(on_the_10th) == []
    assert listed_customers(on_the_11th) == ["Late"]


def test_it_explains_a_bad_date_next_to_the_field_instead_of_failing(user_client):
    make_report()
    response = user_client.get(LIST, {"started_from": "2025-13-45"})
    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(r'name="started_from"[^>]*is-invalid|is-invalid[^>]*name="started_from"', page)
    assert "Enter a date as YYYY-MM-DD, e.g. 2025-03-31." in page
    assert 'data-testid="reports-invalid-filters"' in page
    assert response.context["page"] is None
    assert 'data-testid="reports-export"' not in page


def test_it_refuses_an_end_date_before_the_start_date(user_client):
    response = user_client.get(LIST, {"started_from": "2025-03-10", "started_to": "2025-03-01"})
    assert "This date (2025-03-01) is before the start date (2025-03-10)" in (
        response.content.decode()
    )
    assert response.context["page"] is None


def test_it_names_the_valid_outcomes_when_given_an_unknown_one(user_client):
    response = user_client.get(LIST, {"outcome": "exploded"})
    assert response.status_code == 200
    assert "exploded is not an outcome; choose one of resolved, unresolved" in (
        response.content.decode()
    )


def test_it_shows_fifty_reports_a_page_and_its_page_links_keep_the_filters(user_client):
    for minute in range(120):
        make_report(representative="Tom Becker", started_at=MARCH_10 + dt.timedelta(minutes=minute))
    make_report(representative="Someone Else")
    response = user_client.get(LIST, {"representative": "Tom Becker", "page": 2})
    page = response.context["page"]
    assert page.paginator.count == 120
    assert page.number == 2
    assert len(page.object_list) == 50
    html = response.content.decode()
    assert html.count('data-testid="report-row"') == 50
    assert 'href="?representative=Tom+Becker&amp;page=3"' in html
    assert 'href="?representative=Tom+Becker&amp;page=1"' in html
    assert "Showing 51 to 100 of 120 reports matching the filters." in html


def test_a_page_number_past_the_end_shows_the_last_page(user_client):
    for minute in range(51):
        make_report(started_at=MARCH_10 + dt.timedelta(minutes=minute))
    assert user_client.get(LIST, {"page": 99}).context["page"].number == 2
    assert user_client.get(LIST, {"page": "abc"}).context["page"].number == 1


def test_it_lists_newest_first_and_oldest_first_on_request(user_client):
    make_report(started_at=MARCH_10, customer_name="Older")
    make_report(started_at=MARCH_10 + dt.timedelta(hours=1), customer_name="Newer")
    assert listed_customers(user_client.get(LIST)) == ["Newer", "Older"]
    oldest_first = user_client.get(LIST, {"sort": "started_at"})
    assert listed_customers(oldest_first) == ["Older", "Newer"]


def test_the_sort_link_flips_the_order_and_keeps_the_filters(user_client):
    response = user_client.get(LIST, {"outcome": "resolved", "page": 2})
    assert 'href="?outcome=resolved&amp;sort=started_at"' in response.content.decode()
    response = user_client.get(LIST, {"outcome": "resolved", "sort": "started_at"})
    assert 'href="?outcome=resolved&amp;sort=-started_at"' in response.content.decode()


def test_the_export_link_carries_the_filters_but_not_the_page(user_client):
    make_report()
    response = user_client.get(LIST, {"q": "alice", "page": 1})
    assert f'href="{EXPORT}?q=alice"' in response.content.decode()


def test_the_detail_page_shows_every_field_and_the_transcript(user_client):
    report = make_report(
        chat_transcript="[09:00:00] Alice Baker: <b>help</b>\n[09:01:00] Rita Alvarez: On it."
    )
    response = user_client.get(detail_url(report))
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("Alice Baker", "Rita Alvarez", "LAPTOP-A1", "Resolved", str(report.uuid)):
        assert text in page
    assert "2025-03-10 09:00:00" in page
    assert "2025-03-10 09:12:30" in page
    assert re.search(r'data-testid="report-duration">\s*0:12:30', page)
    assert re.search(
        r'<pre [^>]*data-testid="report-transcript">\[09:00:00\] Alice Baker: '
        r"&lt;b&gt;help&lt;/b&gt;\n\[09:01:00\]",
        page,
    )
    assert "No recording" not in page and ">none<" in page


def test_the_detail_page_says_when_a_session_has_no_end_time(user_client):
    report = make_report(ended_at=None, chat_transcript="")
    page = user_client.get(detail_url(report)).content.decode()
    assert "unknown (no end time)" in page
    assert "No chat took place in this session." in page


def test_an_unknown_report_is_not_found(user_client):
    response = user_client.get(reverse("appliance:reports:detail", args=[Report().uuid]))
    assert response.status_code == 404


def test_it_serves_the_recording_as_an_attachment_to_signed_in_users(user_client, media):
    report = make_report()
    report.recording.save("session.webm", ContentFile(b"recorded bytes"))
    page = user_client.get(detail_url(report)).content.decode()
    assert f'href="{recording_url(report)}"' in page
    assert "recordings/" not in page
    response = user_client.get(recording_url(report))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"recorded bytes"
    assert response["Content-Disposition"] == 'attachment; filename="session.webm"'


def test_recordings_are_not_published_under_the_media_url(user_client, media):
    report = make_report()
    report.recording.save("session.webm", ContentFile(b"recorded bytes"))
    assert user_client.get(f"/media/{report.recording.name}").status_code == 404


def test_a_report_without_a_recording_has_nothing_to_download(user_client):
    assert user_client.get(recording_url(make_report())).status_code == 404


def test_a_recording_missing_from_storage_is_not_found_rather_than_an_error(user_client, media):
    report = make_report(recording="recordings/2025/03/gone.webm")
    assert user_client.get(recording_url(report)).status_code == 404


def test_a_report_here_before_its_recording_says_the_file_follows(user_client, media):
    report = make_report(recording="recordings/2026/11/on-its-way.webm")
    page = user_client.get(detail_url(report)).content.decode()
    assert "Not on this site yet: the recording follows its report" in page
    assert f'href="{recording_url(report)}"' not in page


def test_the_export_streams_a_csv_of_the_filtered_reports(user_client):
    make_report(outcome=Report.Outcome.ESCALATED, customer_name="Escalated one")
    make_report(outcome=Report.Outcome.RESOLVED, customer_name="Resolved one")
    response = user_client.get(EXPORT, {"outcome": "escalated"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="reports-\d{8}T\d{6}Z\.csv"', response["Content-Disposition"]
    )
    header, *rows = export_rows(response)
    assert header[:8] == [
        "uuid",
        "started_at",
        "ended_at",
        "duration_seconds",
        "representative",
        "customer_name",
        "computer_name",
        "outcome",
    ]
    assert [row[5] for row in rows] == ["Escalated one"]
    assert rows[0][1] == "2025-03-10T09:00:00+00:00"
    assert rows[0][2] == "2025-03-10T09:12:30+00:00"
    assert rows[0][3] == "750"
    assert rows[0][9].splitlines()[0] == "[09:00:00] Rita Alvarez: Hello Alice."


def test_export_times_carry_the_site_time_zone_offset(user_client):
    SiteSettings(time_zone="Europe/Berlin").save()
    make_report()
    _, row = export_rows(user_client.get(EXPORT))
    assert row[1] == "2025-03-10T10:00:00+01:00"
    assert dt.datetime.fromisoformat(row[1]) == MARCH_10


def test_the_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(user_client):
    make_report(
        customer_name='=HYPERLINK("http://203.0.113.9","click")',
        representative="+Rita",
        computer_name="-cmd",
        chat_transcript="@SUM(A1)",
    )
    make_report(customer_name="Plain - name", started_at=MARCH_10 - dt.timedelta(days=1))
    _, dangerous, plain = export_rows(user_client.get(EXPORT))
    assert dangerous[5] == '\'=HYPERLINK("http://203.0.113.9","click")'
    assert dangerous[4] == "'+Rita"
    assert dangerous[6] == "'-cmd"
    assert dangerous[9] == "'@SUM(A1)"
    assert plain[5] == "Plain - name"


def test_the_export_reads_the_database_while_streaming_across_chunks(user_client, monkeypatch):
    monkeypatch.setattr("appliance.reports.EXPORT_CHUNK_SIZE", 2)
    for minute in range(5):
        make_report(started_at=MARCH_10 + dt.timedelta(minutes=minute))
    response = user_client.get(EXPORT)
    make_report(started_at=MARCH_10 - dt.timedelta(days=1), customer_name="Added after")
    rows = export_rows(response)[1:]
    assert len(rows) == 6
    assert rows[-1][5] == "Added after"


def test_the_export_never_caches_the_whole_result(user_client, monkeypatch):
    chunk_sizes = []
    original = QuerySet.iterator

    def spy(queryset, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return original(queryset, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    make_report()
    assert len(export_rows(user_client.get(EXPORT))) == 2
    assert chunk_sizes == [2000]


def test_the_export_sends_several_rows_per_piece(user_client, monkeypatch):
    monkeypatch.setattr("appliance.reports.EXPORT_ROWS_PER_WRITE", 2)
    for minute in range(6):
        make_report(started_at=MARCH_10 + dt.timedelta(minutes=minute))
    pieces = [piece.decode() for piece in user_client.get(EXPORT).streaming_content]
    assert [piece.count("\r\n") for piece in pieces] == [2, 2, 2, 1]


def test_the_export_sends_bad_filters_back_to_the_list_with_the_reason(user_client):
    response = user_client.get(EXPORT, {"started_to": "yesterday"})
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?started_to=yesterday"
    page = user_client.get(response["Location"]).content.decode()
    assert "Could not export the reports: correct the filters marked below." in page
    assert "Enter a date as YYYY-MM-DD" in page


def test_the_export_is_recorded_in_the_audit_trail(user_client):
    export_rows(user_client.get(EXPORT, {"outcome": "resolved"}))
    event = AuditEvent.objects.get(action="reports.exported")
    assert event.actor == "rep"
    assert "outcome=resolved" in event.detail
