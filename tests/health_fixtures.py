"""A healthy site for the health API's tests: fresh heartbeats and a real Redis broker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from appliance.models import Heartbeat
from tests.redis_fixture import peer_redis, redis_server  # noqa: F401


def make_heartbeat(component: str, *, age_seconds: float = 0) -> Heartbeat:
    """Record that `component` ("worker" or "beat") was last seen `age_seconds` ago."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        component=component,
        defaults={"last_seen": timezone.now() - timedelta(seconds=age_seconds)},
    )
    return heartbeat


@pytest.fixture
def healthy_site(db, peer_redis: str, settings) -> str:  # noqa: F811
    """Worker and beat seen just now (every 10 s expected) and the broker up; its Redis URL."""
    settings.HEARTBEAT_SECONDS = 10
    make_heartbeat("worker")
    make_heartbeat("beat")
    make_heartbeat("network")
    return peer_redis
