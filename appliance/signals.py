"""The site's own signals, and the Celery signals of its processes.

Other apps hang what they add to the site on the signals below (connected in
their AppConfig.ready), so the site imports none of them:

- `rows_written`: code that writes around the models' save and delete signals
  (bulk_create, QuerySet.update) announces the rows it wrote;
- `status_facts`: what an app adds to the Status page's facts about this site;
- `metric_families`: what an app adds to /metrics (appliance.metrics);
- `login_refusal`: a reason to refuse a login whose name and password were right.

Beat's own heartbeat is recorded in the beat process each time it publishes
one; the worker's by the task itself, so a live beat with a dead worker shows
as exactly that on the Status tab.

A task carries the request id of the work that queued it in a message header,
and runs under it (appliance.tracing): its log lines, the tasks it queues and
its calls to the peer all carry the same id.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass

from celery.signals import beat_init, before_task_publish, task_postrun, task_prerun
from django.dispatch import Signal

from appliance import tracing
from appliance.models import Heartbeat

# sender: the model; keys: the primary keys written; deleted: whether they were deleted.
rows_written = Signal()
# sender: None; request: the page's request. Receivers return a list of Fact.
status_facts = Signal()
# sender: None. Receivers return a list of prometheus_client metric families, read at
# each scrape of /metrics.
metric_families = Signal()
# sender: None; request: the login's request; user: who gave the right password.
# Receivers return None, or the answer that refuses the login instead.
login_refusal = Signal()


@dataclass(frozen=True)
class Fact:
    """One line of the Status page's "This site": a label and a value (a badge when
    `badge` names its colour)."""

    label: str
    value: str
    badge: str = ""
    css_class: str = ""
    test_id: str = ""


_in_beat = False


@beat_init.connect
def _mark_beat_process(**_kwargs: object) -> None:
    global _in_beat
    _in_beat = True


@before_task_publish.connect
def _record_beat_heartbeat(sender: str | None = None, **_kwargs: object) -> None:
    if not _in_beat or sender != "appliance.tasks.record_heartbeat":
        return
    Heartbeat.beat(Heartbeat.Component.BEAT, socket.gethostname(), os.getpid())


@before_task_publish.connect
def _carry_request_id(headers: dict | None = None, **_kwargs: object) -> None:
    if headers is not None and (current := tracing.request_id()):
        headers.setdefault(tracing.TASK_HEADER, current)


_bound_tasks: dict[str, tuple[object, object]] = {}


@task_prerun.connect
def _bind_task(task_id: str = "", task: object = None, **_kwargs: object) -> None:
    """A task runs under the request id it was queued with, or starts one of its own."""
    request = getattr(task, "request", None)
    carried = getattr(request, tracing.TASK_HEADER, None) or (
        (getattr(request, "headers", None) or {}).get(tracing.TASK_HEADER)
    )
    request_id = tracing.valid_or_new(carried) if carried else task_id
    _bound_tasks[task_id] = tracing.start(request_id, task_id)


@task_postrun.connect
def _unbind_task(task_id: str = "", **_kwargs: object) -> None:
    tokens = _bound_tasks.pop(task_id, None)
    if tokens is not None:
        with contextlib.suppress(ValueError):  # bound in another context: nothing to undo
            tracing.stop(tokens)
