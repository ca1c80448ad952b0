"""Synchronous replication loses no acknowledged write, power cut after power cut (namespace lab).

A client writes about 50 reports a second through the shared IP with an API token; the
primary loses power; the backup takes over after its timeout and the client goes on writing
to it. In synchronous mode the primary acknowledges a write only once the backup holds it,
so no acknowledged write may be missing from the new primary, in any of ten trials
(`LAB_SYNCHRONOUS_TRIALS` asks for more: a longer run before a release). Its own file (and
lab) so that it runs beside the other lab tests rather than after them.
"""

from __future__ import annotations

import os

import pytest

from tests.lab_fixtures import lab  # noqa: F401
from tests.lab_writing import configure, ready_for_a_trial, token, writing  # noqa: F401

pytestmark = [pytest.mark.processes, pytest.mark.lab]
SYNCHRONOUS_TRIALS = int(os.environ.get("LAB_SYNCHRONOUS_TRIALS", "10"))


def test_synchronous_replication_loses_no_acknowledged_write(lab, writing):  # noqa: F811
    configure(lab, "--sync-interval", "continuous", "--replication", "synchronous")
    try:
        for trial in range(SYNCHRONOUS_TRIALS):
            seen = writing(f"sync{trial}")
            assert not seen["lost"], (
                f"trial {trial}: {len(seen['lost'])} acknowledged writes lost: "
                f"{sorted(seen['lost'])[:5]}"
            )
    finally:
        ready_for_a_trial(lab)
        configure(lab, "--replication", "asynchronous")
