"""Beat's own heartbeat: recorded in the beat process each time it publishes one.

The worker's heartbeat is recorded by the task itself, so a live beat with a
dead worker shows as exactly that on the Status tab.
"""

import os
import socket

from celery.signals import beat_init, before_task_publish

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
