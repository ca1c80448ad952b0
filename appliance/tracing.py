"""The request id that follows one piece of work through the site's processes and the peer.

A page request gets an id (or keeps the one its caller sent in `X-Request-ID`);
tasks it queues carry it in a Celery message header, calls to the peer in the
`X-Request-ID` header, and the peer's web and workers take it over in turn. A
task queued with no id (by beat) starts a chain of its own with its task id.
Every log line carries the id in force (appliance.logconfig), so one role
change or one sync can be followed from the page through the worker to the
peer and back.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from contextvars import ContextVar

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
# The Celery message header that carries the id to the worker.
TASK_HEADER = "request_id"
# Ids from outside are accepted only in this shape: they end up in every log line.
VALID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_request_id: ContextVar[str] = ContextVar("request_id", default="")
_task_id: ContextVar[str] = ContextVar("task_id", default="")


def new_id() -> str:
    return secrets.token_hex(8)


def valid_or_new(candidate: str | None) -> str:
    """The caller's id when it is a plausible one, else a new id."""
    if candidate and VALID.fullmatch(candidate):
        return candidate
    return new_id()


def request_id() -> str:
    """The id of the work in progress in this thread ("" outside any request or task)."""
    return _request_id.get()


def task_id() -> str:
    return _task_id.get()


@contextlib.contextmanager
def bound(request: str, task: str = "") -> Iterator[None]:
    """Log under `request` (and `task`) until the block ends."""
    tokens = start(request, task)
    try:
        yield
    finally:
        stop(tokens)


def start(request: str, task: str = "") -> tuple[object, object]:
    """Bind the ids; pass the result to `stop` (for signal pairs that cannot use a block)."""
    return _request_id.set(request), _task_id.set(task)


def stop(tokens: tuple[object, object]) -> None:
    request_token, task_token = tokens
    _request_id.reset(request_token)
    _task_id.reset(task_token)
