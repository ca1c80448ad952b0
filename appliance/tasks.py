"""Background jobs of the site itself."""

import os
import socket

from celery import shared_task

from appliance.models import Heartbeat


@shared_task(ignore_result=True)
def record_heartbeat(component: str = Heartbeat.Component.WORKER) -> None:
    """Beat sends this on a timer to each worker's queue; the worker that runs it is alive."""
    Heartbeat.beat(component, socket.gethostname(), os.getpid())
