"""Celery signals of the site's processes.

Beat's own heartbeat is recorded in the beat process each time it publishes
one; the worker's by the task itself, so a live beat with a dead worker shows
as exactly that on the Status tab. A starting worker takes over the sync
retries that a dead worker was holding.
"""

import os
import socket

from celery.signals import beat_init, before_task_publish, worker_ready

_in_beat = False


@beat_init.connect
def _mark_beat_process(**_kwargs: object) -> None:
    global _in_beat
    _in_beat = True


@before_task_publish.connect
def _record_beat_heartbeat(sender: str | None = None, **_kwargs: object) -> None:
    if not _in_beat or sender != "appliance.tasks.record_heartbeat":
        return
    from appliance.models import Heartbeat

    Heartbeat.beat(Heartbeat.Component.BEAT, socket.gethostname(), os.getpid())


@worker_ready.connect
def _requeue_released_syncs(**_kwargs: object) -> None:
    from failover.sync import runs

    runs.requeue_released()
