"""Background jobs of the site itself."""

import os
import socket

from celery import shared_task

from appliance.models import Heartbeat


@shared_task(ignore_result=True)
def record_heartbeat() -> None:
    """Beat sends this on a timer; the worker that runs it proves it is alive."""
    Heartbeat.beat(Heartbeat.Component.WORKER, socket.gethostname(), os.getpid())
