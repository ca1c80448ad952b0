"""The sync's records: rows read on the primary, converted on the backup as Django stores them."""

import datetime as dt
import uuid

import orjson
import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection, transaction
from django.utils import timezone

from appliance.models import ApiAccount, ApiToken, Report
from failover.sync import bulkload, codec
from failover.sync.stream import _line

pytestmark = pytest.mark.django_db

MOMENT = dt.datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=dt.UTC)


def django_would_store(field, value):
    return field.get_db_prep_save(field.to_python(value), connection)


def field(model, name):
    return model._meta.get_field(name)


def only_row(model, keys=None):
    [row] = codec.BY_MODEL[model].rows(keys)
    return row


@pytest.mark.parametrize(
    ("model", "name", "value"),
    [
        (Report, "started_at", "2026-11-26T12:00:00.123456+00:00"),
        (Report, "started_at", "2026-11-26T14:00:00+02:00"),
        (Report, "started_at", "2026-11-26T12:00:00Z"),
        (Report, "ended_at", None),
        (Report, "uuid", "07d4bedc-5143-4193-a6c3-f3391a2b8f1f"),
        (Report, "uuid", "07d4bedc51434193a6c3f3391a2b8f1f"),
        (Report, "customer_name", "Zoë O'Brien"),
        (Report, "id", 123456789012),
        (User, "is_staff", True),
        (User, "email", "rita@example.com"),
        (User, "last_login", None),
    ],
)
def test_a_value_converts_to_what_django_itself_would_store(model, name, value):
    column = field(model, name)
    assert codec.converter(column, connection)(value) == django_would_store(column, value)


def test_a_datetime_without_an_offset_is_taken_as_utc():
    column = field(Report, "started_at")
    convert = codec.converter(column, connection)
    assert convert("2026-11-26 12:00:00.123456") == django_would_store(column, MOMENT)


def test_a_value_of_an_unexpected_type_goes_through_django_and_is_refused():
    with pytest.raises(Exception):  # noqa: B017 (Django's ValidationError or a ValueError)
        codec.converter(field(Report, "id"), connection)("not a number")


def test_rows_read_on_the_primary_convert_back_to_the_rows_in_the_database():
    group = Group.objects.create(name="Tier 2")
    group.permissions.add(Permission.objects.get(codename="view_report"))
    rita = User.objects.create_user("rita", "rita@example.com", "long password 123")
    rita.groups.add(group)
    ApiToken.issue(rita)
    token = ApiToken.objects.get(user=rita)
    report = Report.objects.create(
        representative="Rita",
        customer_name="Zoë",
        started_at=MOMENT,
        ended_at=MOMENT + dt.timedelta(minutes=5),
        outcome="resolved",
        chat_transcript="line one\nline two",
    )
    account = ApiAccount(name="monitoring", access=ApiAccount.Access.FULL)
    account.set_new_secret()
    account.save()

    for synced in codec.SYNCED:
        stored = [
            [f.get_db_prep_save(f.value_from_object(instance), connection) for f in synced.fields]
            for instance in synced.model.objects.order_by("pk")
        ]
        converters = synced.converters(connection)
        received = [
            [
                convert(value)
                for convert, value in zip(converters, orjson.loads(_line(row)), strict=True)
            ]
            for row in synced.rows()
        ]
        width = len(synced.fields)
        assert [row[:width] for row in received] == stored, synced.label

    assert only_row(User, [rita.pk])[-3:] == [[group.pk], [], [token.digest, token.created]]
    assert only_row(Group)[-1] == [["appliance", "view_report"]]
    assert only_row(Report, [report.pk])[-1] is None, "no recording file"
    assert account.secret_hash in only_row(ApiAccount), "the hash travels, never a secret"


def apply_user_row(user: User, token: list | None) -> list:
    """The user's row as the primary would send it with `token`, applied here."""
    synced = codec.BY_MODEL[User]
    sent = orjson.loads(_line(only_row(User, [user.pk])))
    sent[-1] = token
    row = [
        convert(value) for convert, value in zip(synced.converters(connection), sent, strict=True)
    ]
    synced.upsert([row], codec.PermissionMap())
    return row


def test_a_users_api_token_is_applied_with_the_user_and_replaces_the_old_one():
    rita = User.objects.create_user("rita")
    ApiToken.issue(rita)  # the backup's stale token
    digest = "a" * 64
    apply_user_row(rita, [digest, "2026-11-20T08:00:00.250000+00:00"])  # the primary's
    assert list(ApiToken.objects.values_list("user_id", "digest", "created")) == [
        (rita.pk, digest, dt.datetime(2026, 11, 20, 8, 0, 0, 250000, tzinfo=dt.UTC))
    ]
    apply_user_row(rita, None)  # revoked on the primary
    assert not ApiToken.objects.exists()


def test_a_key_sent_in_clear_by_the_release_before_is_kept_as_its_digest():
    rita = User.objects.create_user("rita")
    key = "0123456789abcdef0123456789abcdef01234567"
    apply_user_row(rita, [key, "2026-11-20T08:00:00+00:00"])
    assert ApiToken.objects.get().digest == ApiToken.digest_of(key)
    assert ApiToken.holder(key).user == rita


def report_indexes() -> set[str]:
    with connection.cursor() as cursor:
        return {
            name
            for name, info in connection.introspection.get_constraints(
                cursor, Report._meta.db_table
            ).items()
            if info["index"] and not info["unique"] and not info["primary_key"]
        }


@pytest.mark.skipif(connection.vendor != "sqlite", reason="indexes are deferred on SQLite only")
def test_a_full_load_drops_the_indexes_and_builds_them_again_at_the_end():
    before = report_indexes()
    assert before
    with transaction.atomic(), bulkload.indexes_built_afterwards([Report]):
        assert report_indexes() == set()
        Report.objects.create(
            representative="r", customer_name="c", started_at=timezone.now(), outcome="resolved"
        )
    assert report_indexes() == before


@pytest.mark.skipif(connection.vendor != "sqlite", reason="indexes are deferred on SQLite only")
def test_a_failed_load_gets_its_indexes_back_with_the_rollback():
    before = report_indexes()
    with (
        pytest.raises(ZeroDivisionError),
        transaction.atomic(),
        bulkload.indexes_built_afterwards([Report]),
    ):
        assert report_indexes() == set()
        1 / 0  # noqa: B018
    assert report_indexes() == before


@pytest.mark.django_db(transaction=True)
def test_indexes_are_never_dropped_outside_a_transaction():
    with pytest.raises(RuntimeError), bulkload.indexes_built_afterwards([Report]):
        pass


def test_a_uuid_read_as_text_is_the_report_uuid():
    report = Report.objects.create(
        representative="r", customer_name="c", started_at=MOMENT, outcome="resolved"
    )
    assert uuid.UUID(only_row(Report, [report.pk])[1]) == report.uuid
