"""Recording files a sync placed before a commit that never came are taken away again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.storage import default_storage

from appliance.models import Report
from failover.sync import receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def folders(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"  # the storage follows the setting
    return tmp_path


def spooled(folder, name: str):
    path = folder / name.replace("/", "-")
    path.write_bytes(b"a recording")
    return path


def test_files_placed_for_a_sync_that_did_not_commit_are_removed_and_others_kept(folders):
    Report.objects.create(
        representative="rep",
        customer_name="kept",
        started_at=dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
        recording="recordings/kept.rec",
    )
    names = ["recordings/kept.rec", "recordings/orphan.rec"]
    receive.place_files({name: spooled(folders, name) for name in names})
    assert all(default_storage.exists(name) for name in names)

    # The worker died here, before the commit; the next sync starts by cleaning up.
    assert receive.remove_unapplied_files() == ["recordings/orphan.rec"]
    assert default_storage.exists("recordings/kept.rec")
    assert not default_storage.exists("recordings/orphan.rec")
    assert not receive.placing_journal().exists()
    assert receive.remove_unapplied_files() == []


def test_a_journal_cut_short_is_dropped(folders):
    receive.placing_journal().write_bytes(b'["recordings/a.r')
    assert receive.remove_unapplied_files() == []
    assert not receive.placing_journal().exists()
