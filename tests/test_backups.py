"""Backup and restore of a site: one verified file, and back, all or nothing."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import tarfile

import orjson
import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from appliance.models import ApiToken, Report, SiteSettings
from appliance.reportgen import generate_reports
from failover import backups
from failover.compat import SYNC_FORMAT, SYNC_FORMATS_READ
from failover.models import FailoverEvent
from failover.sync import codec
from tests.conftest import (
    DEFAULT_PASSWORD,
    bearer_client,
    make_api_account,
    make_user,
    paired_as,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def folders(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = tmp_path / "media"  # the storage follows the setting
    settings.DATA_DIR.mkdir()
    return tmp_path


def populate() -> dict[str, object]:
    """A site with something of everything a backup holds."""
    settings_ = SiteSettings.load()
    settings_.site_name = "Support of Example"
    settings_.login_banner = "Authorised use only."
    settings_.save()
    helpdesk = Group.objects.create(name="helpdesk")
    helpdesk.permissions.add(Permission.objects.get(codename="view_report"))
    rita = make_user("rita", email="rita@example.com", first_name="Rita")
    rita.groups.add(helpdesk)
    rita.user_permissions.add(Permission.objects.get(codename="change_report"))
    make_user("admin", admin=True)
    token = ApiToken.issue(rita)
    account, secret = make_api_account("monitoring", full=True)
    bearer = bearer_client(account, secret)
    generate_reports(30, seed=7, with_recordings=4)
    Report.objects.filter(pk=Report.objects.order_by("pk").first().pk).update(
        chat_transcript="Zoë: ça marche?\n" * 3
    )
    return {"token": token, "bearer": bearer}


def delete_reports(count: int) -> None:
    Report.objects.filter(
        pk__in=list(Report.objects.order_by("pk").values_list("pk", flat=True)[:count])
    ).delete()


def dump() -> dict[str, object]:
    """Every row a backup holds, as the sync reads them, and every recording's bytes."""
    rows = {synced.label: list(synced.rows()) for synced in codec.SYNCED}
    names = Report.objects.exclude(recording="").values_list("recording", flat=True)
    files = {}
    for name in names:
        files[name] = None
        if default_storage.exists(name):
            with default_storage.open(name, "rb") as handle:
                files[name] = handle.read()
    return {"rows": orjson.loads(orjson.dumps(rows)), "files": files}


def backup_to(folder) -> object:
    path = folder / backups.file_name()
    backups.write_backup(path)
    return path


def members(path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path, "r:gz") as archive:
        return [(info, archive.extractfile(info).read()) for info in archive]


def rewrite(path, changed: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in changed:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(out.getvalue()))


def test_a_restore_brings_back_exactly_what_was_backed_up(folders):
    populate()
    before = dump()
    assert len(before["files"]) == 4
    path = backup_to(folders)

    # The site moves on: users, settings, reports and recordings change.
    User.objects.filter(username="rita").delete()
    Group.objects.all().delete()
    SiteSettings.objects.update(site_name="Changed")
    delete_reports(5)
    gone = next(iter(before["files"]))
    default_storage.delete(gone)
    newer = Report.objects.create(
        representative="new",
        customer_name="new",
        started_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        recording=default_storage.save("recordings/newer.rec", ContentFile(b"newer")),
    )
    assert dump() != before

    summary = backups.restore(path, actor="admin")

    assert dump() == before
    assert summary.counts["appliance.report"] == 30
    assert summary.files == 4
    assert not default_storage.exists(newer.recording.name)
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.RESTORED)
    assert "30 report(s), 4 recording(s)" in event.message


def test_a_restored_user_signs_in_with_the_same_password_and_tokens(folders):
    held = populate()
    path = backup_to(folders)
    User.objects.all().delete()

    backups.restore(path)

    client = Client()
    client.post("/login", {"username": "rita", "password": DEFAULT_PASSWORD})
    assert "_auth_user_id" in client.session
    assert ApiToken.holder(held["token"]).user.username == "rita"
    assert held["bearer"].get("/api/v1/health/").status_code == 200


def test_a_restore_signs_everyone_out(folders, admin_client):
    assert admin_client.get("/status/").status_code == 200
    path = backup_to(folders)
    assert Session.objects.exists()

    backups.restore(path)

    assert not Session.objects.exists()
    assert admin_client.get("/status/").status_code == 302


def test_the_file_lists_each_member_with_its_checksum_in_a_manifest_at_the_end(folders):
    populate()
    path = backup_to(folders)

    found = members(path)

    names = [info.name for info, _ in found]
    assert names[0] == backups.HEAD
    assert names[-1] == backups.MANIFEST
    assert names[1].startswith(backups.RECORDS_PREFIX)
    assert sum(name.startswith(backups.FILES_PREFIX) for name in names) == 4
    manifest = orjson.loads(found[-1][1])
    assert manifest["format"] == backups.FORMAT
    assert manifest["counts"]["appliance.report"] == 30
    assert manifest["counts"]["auth.user"] == 2
    assert [m["name"] for m in manifest["members"]] == names[:-1]


def assert_refused_and_unchanged(path, *expected: str) -> None:
    before = dump()
    with pytest.raises(backups.RestoreRefused) as refused:
        backups.restore(path)
    for text in expected:
        assert text in refused.value.message
    assert "Nothing was changed." in refused.value.message
    assert dump() == before
    assert not FailoverEvent.objects.filter(kind=FailoverEvent.Kind.RESTORED).exists()


def test_a_file_cut_short_is_refused(folders):
    populate()
    path = backup_to(folders)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    delete_reports(3)

    assert_refused_and_unchanged(path, "the file ends early", "cut short")


def test_a_file_cut_between_two_members_is_refused(folders):
    populate()
    path = backup_to(folders)
    rewrite(path, members(path)[:-1])

    assert_refused_and_unchanged(path, "before its manifest", "cut short")


def test_a_member_changed_after_the_backup_is_refused(folders):
    populate()
    path = backup_to(folders)
    found = members(path)
    info, data = found[1]
    found[1] = (info, data.replace(b"Rita", b"Evil", 1))
    rewrite(path, found)
    delete_reports(3)

    assert_refused_and_unchanged(
        path, f"its member '{info.name}' does not match the SHA-256 checksum", "altered"
    )


def test_a_recording_changed_after_the_backup_is_refused(folders):
    populate()
    path = backup_to(folders)
    found = members(path)
    index = next(i for i, (info, _) in enumerate(found) if info.name.startswith("files/"))
    found[index] = (found[index][0], b"something else")
    rewrite(path, found)

    assert_refused_and_unchanged(path, "does not match the SHA-256 checksum")


def test_a_byte_flipped_in_the_compressed_file_is_refused(folders):
    populate()
    path = backup_to(folders)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))

    assert_refused_and_unchanged(path)


def test_a_file_from_a_newer_format_is_refused_before_anything_is_read(folders):
    populate()
    path = backup_to(folders)
    found = members(path)
    head = orjson.loads(found[0][1])
    head.update(format=backups.FORMAT + 1, version="99.0")
    found[0] = (found[0][0], orjson.dumps(head))
    rewrite(path, found)

    assert_refused_and_unchanged(
        path,
        f"in backup format {backups.FORMAT + 1}",
        f"reads backup format {backups.FORMAT} and earlier",
        "Restore it on version 99.0 or later",
    )


def test_a_file_whose_records_have_other_columns_is_refused_with_the_version_to_use(
    folders, monkeypatch
):
    populate()
    # Another version of the same backup format, whose reports have one column more.
    plain = codec.Synced.columns.fget

    def with_a_column_more(synced):
        extra = ["legacy_ticket"] if synced.label == "appliance.report" else []
        return plain(synced) + extra

    with monkeypatch.context() as other_version:
        other_version.setattr(codec.Synced, "columns", property(with_a_column_more))
        other_version.setattr(backups, "SOFTWARE_VERSION", "0.9.0")
        path = backup_to(folders)
    delete_reports(3)
    expected = codec.BY_LABEL["appliance.report"].columns

    assert_refused_and_unchanged(
        path,
        f"{path.name}: this backup holds appliance.report with the columns "
        f"{[*expected, 'legacy_ticket']}, this site expects {expected}; restore it with the "
        "version that wrote it (0.9.0).",
    )
    assert "The primary sends" not in message_of(path)


def test_a_file_whose_records_are_in_another_sync_format_is_refused_with_the_version_to_use(
    folders, monkeypatch
):
    populate()
    with monkeypatch.context() as other_version:
        other_version.setattr("failover.sync.stream.SYNC_FORMAT", SYNC_FORMAT + 1)
        other_version.setattr(backups, "SOFTWARE_VERSION", "3.1.0")
        path = backup_to(folders)
    delete_reports(3)

    assert_refused_and_unchanged(
        path,
        f"this backup holds its records in sync format {SYNC_FORMAT + 1}, this site reads sync "
        f"formats {SYNC_FORMATS_READ[0]} to {SYNC_FORMATS_READ[1]}; restore it with the version "
        "that wrote it (3.1.0).",
    )
    assert "The primary sends" not in message_of(path)


def test_a_file_holding_a_record_its_model_refuses_names_the_record_and_the_field(folders):
    populate()
    # Written behind the model's back (as a script or a database client could): no outcome.
    broken = Report.objects.order_by("pk").first()
    Report.objects.filter(pk=broken.pk).update(outcome="")
    path = backup_to(folders)
    Report.objects.filter(pk=broken.pk).update(outcome="resolved")
    delete_reports(3)

    assert_refused_and_unchanged(
        path,
        f"{path.name}: its appliance.report record with key {broken.pk} has a value in field "
        "outcome that this site refuses: This field cannot be blank. Correct the record on the "
        "site that wrote the backup and take a new one. Nothing was changed.",
    )
    assert "primary" not in message_of(path)


def message_of(path) -> str:
    with pytest.raises(backups.RestoreRefused) as refused:
        backups.restore(path)
    return refused.value.message


def test_a_file_that_is_not_a_backup_is_refused(folders):
    path = folders / "notes.tar.gz"
    path.write_bytes(gzip.compress(b"just some text, not a tar archive" * 40))

    assert_refused_and_unchanged(path, "notes.tar.gz")


def test_a_paired_site_refuses_a_restore(folders):
    populate()
    path = backup_to(folders)
    paired_as("backup", peer_name="site-a")

    assert_refused_and_unchanged(path, "This site is the backup of a failover pair with site-a")


def test_a_failure_while_applying_changes_nothing(folders, monkeypatch):
    populate()
    path = backup_to(folders)
    delete_reports(3)
    default_storage.delete(Report.objects.exclude(recording="").first().recording.name)

    def fail(*_args):
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(backups.receive, "reset_sequences", fail)
    before = dump_without_missing_files()
    with pytest.raises(RuntimeError):
        backups.restore(path)

    assert dump_without_missing_files() == before
    placed = list((folders / "media").rglob("*.rec"))
    assert len(placed) == 3


def dump_without_missing_files() -> dict[str, object]:
    rows = {synced.label: list(synced.rows()) for synced in codec.SYNCED}
    return orjson.loads(orjson.dumps(rows))


def test_a_backup_keeps_the_newest_files_it_names_and_no_others(folders, settings):
    folder = folders / "backups"
    folder.mkdir()
    (folder / "unrelated.tar.gz").write_bytes(b"keep me")
    for day in range(1, 5):
        (folder / backups.file_name(dt.datetime(2026, 11, day, tzinfo=dt.UTC))).write_bytes(b"")

    removed = backups.prune(folder, keep=2)

    assert [p.name for p in removed] == [
        backups.file_name(dt.datetime(2026, 11, day, tzinfo=dt.UTC)) for day in (1, 2)
    ]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["unrelated.tar.gz"]
        + [backups.file_name(dt.datetime(2026, 11, day, tzinfo=dt.UTC)) for day in (3, 4)]
    )


def test_a_file_of_the_same_name_is_replaced_only_when_the_restore_commits(folders, monkeypatch):
    name = default_storage.save("recordings/shared-name.rec", ContentFile(b"from the backup"))
    Report.objects.create(
        representative="rep",
        customer_name="customer",
        started_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        outcome="resolved",
        recording=name,
    )
    path = backup_to(folders)
    with default_storage.open(name, "wb") as handle:  # this site's own file of that name
        handle.write(b"this site's own")

    def fail(*_args):
        raise RuntimeError("the disk went away")

    with monkeypatch.context() as patched:
        patched.setattr(backups.receive, "reset_sequences", fail)
        with pytest.raises(RuntimeError):
            backups.restore(path)
    with default_storage.open(name, "rb") as handle:
        assert handle.read() == b"this site's own"

    backups.restore(path)
    with default_storage.open(name, "rb") as handle:
        assert handle.read() == b"from the backup"


def shared_name_backup(folders) -> tuple[str, object]:
    """A backup holding a recording whose name this site then uses for a file of its own."""
    name = default_storage.save("recordings/shared-name.rec", ContentFile(b"from the backup"))
    Report.objects.create(
        representative="rep",
        customer_name="customer",
        started_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        outcome="resolved",
        recording=name,
    )
    path = backup_to(folders)
    with default_storage.open(name, "wb") as handle:
        handle.write(b"this site's own")
    return name, path


def test_a_restore_that_stopped_after_its_commit_keeps_the_restored_file(folders, monkeypatch):
    name, path = shared_name_backup(folders)
    with monkeypatch.context() as stopped_after_commit:  # the journal is never cleared
        stopped_after_commit.setattr(backups, "_forget_displaced", lambda: None)
        backups.restore(path)
    assert backups.displaced_journal().exists()

    said = backups.recover_interrupted_restore()

    assert said.startswith("A restore had committed before it stopped")
    with default_storage.open(name, "rb") as handle:
        assert handle.read() == b"from the backup"
    assert not backups.displaced_folder().exists()
    assert not backups.displaced_journal().exists()


def test_a_second_restore_while_one_runs_is_refused(folders):
    _name, path = shared_name_backup(folders)
    with backups._one_restore_at_a_time():
        assert backups.recover_at_start() == (
            "A restore of this site is running: its files are left to it."
        )
        assert_refused_and_unchanged(path, "Another restore of this site is running")
