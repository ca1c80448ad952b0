"""The change stream is split into lines in time linear in its length, whatever its chunks."""

from __future__ import annotations

import random
import time

import pytest

from failover.sync.receive import Lines, SyncFailed


def split(data: bytes, sizes: list[int], limit: int = 1 << 20) -> tuple[list[bytes], bytes]:
    lines, found, start = Lines(limit), [], 0
    for size in sizes:
        found += list(lines.feed(data[start : start + size]))
        start += size
    return found, lines.rest()


def test_lines_cut_anywhere_come_out_whole():
    chooser = random.Random(7)
    data = b"".join(b"x" * chooser.randrange(0, 300) + b"\n" for _ in range(500)) + b"tail"
    for _ in range(20):
        sizes = [chooser.randrange(1, 700) for _ in range(len(data))]
        found, rest = split(data, sizes)
        assert found == data.split(b"\n")[:-1]
        assert rest == b"tail"


def test_a_line_longer_than_the_limit_is_refused_before_its_end_arrives():
    lines = Lines(1000)
    list(lines.feed(b"a" * 600))
    with pytest.raises(SyncFailed, match="a line longer than any record"):
        list(lines.feed(b"a" * 600))


def test_a_line_longer_than_the_limit_within_one_chunk_is_refused():
    with pytest.raises(SyncFailed, match="a line longer than any record"):
        list(Lines(10).feed(b"a" * 11 + b"\n"))


def test_a_32_mib_line_in_16_kib_chunks_is_split_in_linear_time():
    """Quadratic buffering copied and scanned such a line about 2000 times (tens of GiB,
    many seconds); linear splitting touches each byte a few times (tens of milliseconds).
    The budget is generous for a slow machine and far below the quadratic cost."""
    chunk, count = b"y" * (16 * 1024), 2048
    lines = Lines(64 * 1024 * 1024)
    began = time.perf_counter()
    for _ in range(count):
        assert not list(lines.feed(chunk))
    (line,) = list(lines.feed(b"\n"))
    elapsed = time.perf_counter() - began
    assert len(line) == 32 * 1024 * 1024
    assert elapsed < 2.0, f"{elapsed:.2f} s"
