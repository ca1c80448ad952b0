import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from appliance.models import Report
from appliance.reportgen import build_reports, generate_reports

END = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
FIELDS = [
    "uuid",
    "representative",
    "customer_name",
    "computer_name",
    "started_at",
    "ended_at",
    "outcome",
    "chat_transcript",
    "recording",
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def as_values(reports) -> list[tuple]:
    return [tuple(str(getattr(report, name)) for name in FIELDS) for report in reports]


def stored_values() -> list[tuple]:
    return as_values(Report.objects.order_by("id"))


def test_it_creates_the_requested_number_of_reports_in_batches(django_assert_max_num_queries):
    with django_assert_max_num_queries(30):
        assert generate_reports(250, seed=1, end=END, batch_size=100) == 250
    assert Report.objects.count() == 250


def test_the_same_seed_and_end_give_the_same_reports():
    first = as_values(build_reports(200, seed=7, end=END))
    assert as_values(build_reports(200, seed=7, end=END)) == first
    assert as_values(build_reports(200, seed=8, end=END)) != first


def test_generated_reports_are_valid_and_look_like_real_sessions():
    reports = list(build_reports(500, seed=3, end=END))
    assert len({report.uuid for report in reports}) == 500
    assert len({report.representative for report in reports}) > 10
    assert len({report.customer_name for report in reports}) > 200
    assert {report.outcome for report in reports} == set(Report.Outcome.values)
    resolved = sum(report.outcome == Report.Outcome.RESOLVED for report in reports)
    assert 0.6 < resolved / 500 < 0.8
    for report in reports:
        assert END - dt.timedelta(days=365) <= report.started_at < END
        assert report.ended_at is None or report.ended_at > report.started_at
        assert report.chat_transcript.count("\n") >= 3
        assert report.chat_transcript.startswith(f"[{report.started_at:%H:%M:%S}] System:")
        report.full_clean(validate_unique=False)
    weekdays = sum(report.started_at.weekday() < 5 for report in reports)
    assert weekdays / 500 > 0.85


def test_it_gives_exactly_k_reports_a_recording_file(media):
    generate_reports(40, seed=5, end=END, batch_size=15, with_recordings=6)
    with_recording = Report.objects.exclude(recording="")
    assert with_recording.count() == 6
    for report in with_recording:
        assert report.recording.name.startswith(f"recordings/{report.started_at:%Y/%m}/")
        assert (media / report.recording.name).read_bytes().startswith(b"Placeholder")


def test_it_refuses_more_recordings_than_reports():
    with pytest.raises(ValueError, match="Cannot give 5 of 3 reports a recording"):
        generate_reports(3, with_recordings=5)
    assert not Report.objects.exists()


def test_the_command_creates_reports_and_says_how_long_it_took():
    out = io.StringIO()
    call_command("generate_reports", "120", "--seed", "2", "--batch-size", "50", stdout=out)
    assert Report.objects.count() == 120
    assert out.getvalue().startswith("Created 120 reports (0 with a recording) in ")


def test_the_command_is_repeatable_with_a_seed_and_an_end_date():
    args = ["generate_reports", "60", "--seed", "11", "--end", "2025-06-01"]
    call_command(*args, stdout=io.StringIO())
    first = stored_values()
    assert all(value[4] < "2025-06-01" for value in first)
    Report.objects.all().delete()
    call_command(*args, stdout=io.StringIO())
    assert stored_values() == first


def test_the_command_explains_why_a_seed_cannot_be_reused_on_the_same_database():
    call_command("generate_reports", "5", "--seed", "4", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--seed 4 was probably used on this database before"):
        call_command("generate_reports", "5", "--seed", "4", stdout=io.StringIO())
    assert Report.objects.count() == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-3"], "-3 is negative; give 0 or more."),
        (["ten"], "'ten' is not a whole number."),
        (["5", "--with-recordings", "6"], "--with-recordings 6 is more than the 5 reports"),
        (["5", "--batch-size", "0"], "--batch-size must be at least 1."),
        (["5", "--end", "June"], "'June' is not a date; use YYYY-MM-DD."),
    ],
)
def test_the_command_rejects_bad_arguments_with_a_reason(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("generate_reports", *args, stdout=io.StringIO())
    assert not Report.objects.exists()
