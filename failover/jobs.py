"""Background work, asked for by the task's name: the one way behaviour queues a task.

The Celery tasks (failover.tasks) are an entry point: each one calls a
behaviour module, so no behaviour module may import them back. They queue
work here instead, by the task's name. Celery routes a task sent by name
(CELERY_TASK_ROUTES: the network queue for the failover path) exactly as if
the task object itself had been called.

Each function queues at once: callers inside a transaction wrap the call in
`transaction.on_commit`, so the worker never looks for a row not yet committed.
"""

from __future__ import annotations

from typing import Any

from appliance.celery import app

PREFIX = "failover.tasks."


def _send(task: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    app.send_task(PREFIX + task, args=args, kwargs=kwargs, countdown=countdown)


def run_sync(run_id: int, *, countdown: float | None = None) -> None:
    """The backup's worker carries out sync #`run_id` (now, or after `countdown` seconds)."""
    _send("run_sync", run_id, countdown=countdown)


def replicate(*, countdown: float | None = None) -> None:
    """The replication worker runs the next round of continuous replication."""
    _send("replicate", countdown=countdown)


def follow_role(*, peer_checked: bool = False) -> None:
    """The network worker makes the addresses, the DNS name and the hooks follow the role."""
    _send("follow_role", peer_checked=peer_checked)


def announce_shared_ip(*, check_holder: bool = False, countdown: float | None = None) -> None:
    """The network worker announces the shared addresses again (after looking for another
    holder)."""
    _send("announce_shared_ip", check_holder=check_holder, countdown=countdown)


def change_role(action: str, actor: str, flag: bool, *, token: str) -> None:
    """The worker carries out Become Primary (flag: sync first) or Become Backup (flag: force),
    under the claim `token` taken when it was asked for."""
    _send("change_role", action, actor, flag, token=token)


def send_alert(event_id: int) -> None:
    """The worker sends the alert for one event of the status history."""
    _send("send_alert", event_id)
