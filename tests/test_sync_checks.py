"""A record from the primary is kept only if this site's own pages would accept it.

The change sets here are real streams: made from this database by the
primary's code (with bad values written straight into the tables, past every
form), or written line by line for values no database would hold. The backup's
receiver reads them as it reads the primary's answer; the one thing faked is
the peer client that hands over the bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Iterator

import orjson
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from appliance.models import ApiAccount, Report, SiteSettings
from failover import compat
from failover.sync import codec, progress, receive, stream
from failover.sync.throttle import Throttle

pytestmark = pytest.mark.django_db
SEAL = b"k" * 32


class _Answer:
    seal_key = SEAL

    def __init__(self, data: bytes) -> None:
        self.data = data

    def chunks(self, size: int) -> Iterator[bytes]:
        for start in range(0, len(self.data), size):
            yield self.data[start : start + size]


class _Primary:
    """Hands over fixed bytes as the answer to the request for changes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    @contextlib.contextmanager
    def stream(self, method: str, path: str, *, json: object = None) -> Iterator[_Answer]:
        yield _Answer(self.data)


def receive_stream(data: bytes, tmp_path) -> receive.Received:
    return receive.download(_Primary(data), {}, tmp_path, Throttle(None), progress.Silent())


def primary_stream() -> bytes:
    """Everything in this database, as the primary sends it for a full sync."""
    plan = stream.Plan.make(None, None, True)
    return b"".join(stream.sealed_stream(plan, SEAL))


def sealed(lines: list[object], header: dict | None = None) -> bytes:
    """A stream of these lines under a well-formed header, sealed as the primary seals."""
    head = {
        "type": "header", "format": compat.SYNC_FORMAT, "generation": None, "full": True,
        "since": 0, "upto": 1, "latest": 1, "next_change_at": None, "expected": 1,
    }  # fmt: skip
    head.update(header or {})
    body = b"".join(orjson.dumps(line) + b"\n" for line in [head, *lines])
    records = sum(1 for line in lines if isinstance(line, list) or line.get("type") == "delete")
    mac = hmac.new(SEAL, body, hashlib.sha256).hexdigest()
    return body + orjson.dumps({"type": "end", "records": records, "hmac": mac}) + b"\n"


def model_line(label: str) -> dict:
    return {"type": "model", "model": label, "columns": codec.BY_LABEL[label].columns}


def refusal(data: bytes, tmp_path) -> str:
    with pytest.raises(receive.SyncFailed) as refused:
        receive_stream(data, tmp_path)
    assert not refused.value.transient, "the same record would come again: no retry"
    return refused.value.message


def with_value(label: str, key: int, field: str, value: object) -> bytes:
    """A stream of one record as the primary sends it, with `field` holding `value`."""
    synced = codec.BY_LABEL[label]
    row = next(synced.rows([key]))
    row[synced.columns.index(field)] = value
    return sealed([model_line(label), row])


def settings_row() -> SiteSettings:
    settings = SiteSettings.load()
    settings.save()
    return settings


def test_a_clean_full_stream_is_received_whole(tmp_path):
    settings_row()
    User.objects.create_user("rita", "rita@example.com", "x")
    received = receive_stream(primary_stream(), tmp_path)
    assert received.records >= 2


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("time_zone", "Not/AZone", "'Not/AZone' is not one of its choices"),
        ("site_name", "S" * 5000, "5000 characters long; at most 100"),
        ("site_name", "", "This field cannot be blank"),
    ],
)
def test_site_settings_the_backup_could_not_serve_with_refuse_the_sync(
    tmp_path, field, value, reason
):
    # The primary's row as it would stream it had its database taken the value (SQLite
    # keeps any length; PostgreSQL would refuse this one at the primary already).
    message = refusal(
        with_value("appliance.sitesettings", settings_row().pk, field, value), tmp_path
    )
    assert f"appliance.sitesettings record with key 1 has a value in field {field}" in message
    assert reason in message
    assert "Nothing was applied" in message


def make_report(**values) -> Report:
    return Report.objects.create(
        representative="ann", customer_name="bob", started_at=timezone.now(),
        outcome="resolved", **values,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("outcome", "exploded", "'exploded' is not one of its choices"),
        ("representative", "", "This field cannot be blank"),
        ("customer_name", "c" * 151, "at most 150"),
    ],
)
def test_a_report_with_a_value_its_page_refuses_is_refused_with_its_key(
    tmp_path, field, value, reason
):
    report = make_report()
    message = refusal(with_value("appliance.report", report.pk, field, value), tmp_path)
    assert f"appliance.report record with key {report.pk} has a value in field {field}" in message
    assert reason in message


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("username", "bad name; rm", "Enter a valid username"),
        ("email", "not-an-email", "Enter a valid email address"),
        ("password", "p" * 200, "at most 128"),
    ],
)
def test_a_user_with_a_value_its_page_refuses_is_refused(tmp_path, field, value, reason):
    user = User.objects.create_user("rita", "rita@example.com", "x")
    message = refusal(with_value("auth.user", user.pk, field, value), tmp_path)
    assert f"auth.user record with key {user.pk} has a value in field {field}" in message
    assert reason in message


def test_a_negative_retention_no_database_would_hold_is_refused_as_well(tmp_path):
    synced = codec.BY_LABEL["appliance.sitesettings"]
    settings_row()
    row = next(synced.rows([1]))
    row[synced.columns.index("report_retention_days")] = -1
    message = refusal(sealed([model_line(synced.label), row]), tmp_path)
    assert (
        "appliance.sitesettings record with key 1 has a value in field report_retention_days"
        in message
    )
    assert "greater than or equal to 0" in message


def test_an_api_account_with_an_unknown_permission_is_refused(tmp_path):
    account = ApiAccount.objects.create(name="monitor", secret_hash="x")
    ApiAccount.objects.filter(pk=account.pk).update(access="root")
    message = refusal(primary_stream(), tmp_path)
    assert (
        f"appliance.apiaccount record with key {account.pk} has a value in field access" in message
    )


def user_row(**changes) -> list:
    """A user's row as the primary would send it, with some columns changed."""
    user = User.objects.create_user("rita", "rita@example.com", "x")
    synced = codec.BY_LABEL["auth.user"]
    row = next(synced.rows([user.pk]))
    user.delete()
    for column, value in changes.items():
        row[synced.columns.index(column)] = value
    return row


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("is_superuser", "yes", "must be either True or False"),
        ("is_active", None, "must be either True or False"),
        ("username", 12, "is not a value of this field"),
        ("date_joined", "yesterday", "date_joined"),
        ("groups", ["1"], "a list of integer keys"),
        ("user_permissions", [["auth"]], "[app label, codename] pairs"),
        ("api_token", ["k" * 41, "2026-01-01T00:00:00"], "at most 40 characters"),
        ("api_token", ["k" * 40, "not a time"], "ISO 8601"),
    ],
)
def test_a_value_no_column_of_this_site_holds_is_refused_with_its_column(
    tmp_path, column, value, reason
):
    row = user_row(**{column: value})
    message = refusal(sealed([model_line("auth.user"), row]), tmp_path)
    assert f"auth.user record with key {row[0]} has a value in field {column}" in message
    assert reason in message


def test_a_recording_with_a_name_longer_than_its_column_is_refused(tmp_path):
    report = make_report()
    synced = codec.BY_LABEL["appliance.report"]
    row = next(synced.rows([report.pk]))
    row[-1] = {"name": "r" * 101, "size": 1, "sha256": "0" * 64}
    message = refusal(sealed([model_line("appliance.report"), row]), tmp_path)
    assert "has a value in field recording" in message
    assert "1 to 100 characters" in message


@pytest.mark.parametrize(
    "header",
    [
        {"upto": "7"},
        {"full": "yes"},
        {"since": -1},
        {"generation": "not-a-uuid"},
        {"next_change_at": "soon"},
    ],
)
def test_a_header_with_values_of_the_wrong_kind_is_refused_before_any_record(tmp_path, header):
    with pytest.raises(receive.SyncFailed, match="arrived damaged"):
        receive_stream(sealed([], header), tmp_path)
