"""A sync holds at most SYNC_SPOOL_MAX_BYTES on the backup's disk, and a recording no
larger than its report announces: past either, the sync stops at once, refused."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import orjson
import pytest
from django.contrib.auth.models import User

from failover.sync import progress, receive
from failover.sync.throttle import Throttle
from tests.test_sync_checks import primary_stream, receive_stream

pytestmark = pytest.mark.django_db


class Endless:
    """A file answer that sends 1 KiB chunks for ever, counting what was read."""

    def __init__(self) -> None:
        self.sent = 0

    def chunks(self, size: int) -> Iterator[bytes]:
        while True:
            self.sent += 1
            yield b"r" * 1024


def test_a_recording_longer_than_announced_is_cut_off_at_once(tmp_path):
    answer = Endless()
    recording = {"name": "recordings/a.webm", "size": 4096, "sha256": "0" * 64}
    with pytest.raises(receive.SyncFailed) as refused:
        receive._receive_file(answer, tmp_path / "a", recording, Throttle(None))
    assert "more of the recording recordings/a.webm than the 4096 bytes" in refused.value.message
    assert not refused.value.transient
    assert answer.sent == 5, "one chunk past the announced size, and no more"
    assert (tmp_path / "a").stat().st_size == 4096


def test_a_recording_of_the_announced_size_with_its_checksum_is_kept(tmp_path):
    content = b"r" * 3000
    recording = {"name": "a.webm", "size": 3000, "sha256": hashlib.sha256(content).hexdigest()}

    class Answer:
        def chunks(self, size: int) -> Iterator[bytes]:
            yield content[:1000]
            yield content[1000:]

    receive._receive_file(Answer(), tmp_path / "a", recording, Throttle(None))
    assert (tmp_path / "a").read_bytes() == content


def test_records_past_the_spool_limit_refuse_the_sync(tmp_path, settings):
    settings.SYNC_SPOOL_MAX_BYTES = 2000
    User.objects.bulk_create(
        User(username=f"user{number}", email=f"u{number}@example.com", password="!")
        for number in range(40)
    )
    with pytest.raises(receive.SyncFailed) as refused:
        receive_stream(primary_stream(), tmp_path)
    assert "more than SYNC_SPOOL_MAX_BYTES (2000)" in refused.value.message
    assert not refused.value.transient


class _NoFiles:
    @contextlib.contextmanager
    def stream(self, method: str, path: str, *, json: object = None):
        raise AssertionError("no file is asked for once the announced sizes do not fit")
        yield


def test_recordings_whose_announced_sizes_pass_the_limit_are_not_fetched(tmp_path, settings):
    settings.SYNC_SPOOL_MAX_BYTES = 10 * 1024**2
    (tmp_path / receive.RECORDS).write_bytes(b"")
    (tmp_path / receive.RECORDINGS).write_bytes(
        orjson.dumps({"name": "recordings/huge.webm", "size": 10**15, "sha256": "0" * 64}) + b"\n"
    )
    received = receive.Received(header={}, records=1, spool=tmp_path, recordings=1)
    with pytest.raises(receive.SyncFailed, match="1 recording\\(s\\), more than SYNC_SPOOL"):
        receive._fetch_files(_NoFiles(), received, Throttle(None), progress.Silent())
