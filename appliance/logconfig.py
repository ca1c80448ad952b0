"""One logging configuration for every process of a site: web, workers, beat, runsite, commands.

Every line names the site, the process (web, worker, network, beat, runsite or
the management command) and the request or task it belongs to
(appliance.tracing). Human-readable by default; one JSON object per line with
LOG_FORMAT=json, for a log shipper. Processes log to their standard error:
systemd's journal or docker's log driver collects it, and `runsite` writes each
process's output to its own file in the data folder, rotated by size
(LOG_MAX_BYTES, LOG_BACKUP_COUNT).

Django applies `LOGGING` (settings, through `configure`) in every process that loads the settings;
gunicorn's master, which does not, gets the same dictionary from
appliance.gunicorn_config; Celery is told not to install its own
(appliance.celery).
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.config
import os
import socket
import sys
from pathlib import Path
from typing import Any

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

from appliance import config, tracing

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(site)s/%(proc)s %(ids)s %(name)s: %(message)s"
# Names of the processes, set by whoever starts them (runsite, the systemd units,
# docker-compose) in APPLIANCE_PROCESS; guessed from the command line otherwise.
PROCESS_VARIABLE = "APPLIANCE_PROCESS"


def guess_process(argv: list[str]) -> str:
    """web, worker, network, beat, or the management command's name."""
    words = [Path(word).name for word in argv]
    if any(word.startswith("gunicorn") for word in words):
        return "web"
    if any(word.startswith("celery") for word in words):
        if "beat" in words:
            return "beat"
        if "--queues" in words and words.index("--queues") + 1 < len(words):
            return "network" if words[words.index("--queues") + 1] == "network" else "worker"
        return "worker"
    for index, word in enumerate(words[:-1]):
        if word in ("manage.py", "appliance", "__main__.py"):
            return words[index + 1]
    return words[0] if words else "python"


def process_name() -> str:
    return os.environ.get(PROCESS_VARIABLE) or guess_process(sys.argv)


class ContextFilter(logging.Filter):
    """Adds the site, the process and the ids of the work in progress to every record."""

    def __init__(self, site: str = "", process: str = "") -> None:
        super().__init__()
        self.site = site or config.env_str("APPLIANCE_NAME", socket.gethostname())
        self.process = process or process_name()

    def filter(self, record: logging.LogRecord) -> bool:
        record.site = self.site
        record.proc = self.process
        record.request_id = tracing.request_id()
        record.task_id = tracing.task_id()
        ids = []
        if record.request_id:
            ids.append(f"request={record.request_id}")
        if record.task_id:
            ids.append(f"task={record.task_id}")
        record.ids = " ".join(ids) or "-"
        return True


class JsonFormatter(BaseJsonFormatter):
    """One JSON object per line: time, level, site, process, pid, ids, logger, message."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["site"] = getattr(record, "site", "")
        log_data["process"] = getattr(record, "proc", "")
        log_data["pid"] = record.process
        for name in ("request_id", "task_id"):
            if value := getattr(record, name, ""):
                log_data[name] = value
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data.update(message_dict)


def logging_config(*, level: str, log_format: str, site: str = "") -> dict[str, Any]:
    """The dictConfig of every process: one handler on standard error, one format."""
    formatter: dict[str, Any] = (
        {"()": "appliance.logconfig.JsonFormatter"}
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "appliance.logconfig.ContextFilter", "site": site}},
        "formatters": {"site": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "site",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # Requests are logged once, by appliance.middleware.RequestLogMiddleware.
            "django.server": {"level": "WARNING"},
            # Gunicorn's own lines join the root's handler; it has no access log.
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # Celery's and the worker's lines, in the same format.
            "celery": {"level": level},
            # One task per replicated batch: its receipt and success are not news (the
            # lag shows them); failures still are.
            **(
                {"celery.app.trace": {"level": "WARNING"}, "celery.worker": {"level": "WARNING"}}
                if process_name() == "replication"
                else {}
            ),
        },
    }


def configure(config: dict[str, Any]) -> None:
    """Apply `config` (settings.LOGGING_CONFIG names this); Python's warnings become log
    lines too, so that nothing reaches standard error in another format."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def from_environment() -> dict[str, Any]:
    """The configuration the environment asks for (LOG_LEVEL, LOG_FORMAT, APPLIANCE_NAME)."""
    return logging_config(
        level=config.env_choice("LOG_LEVEL", "INFO", LEVELS),
        log_format=config.env_choice("LOG_FORMAT", "text", FORMATS),
        site=config.env_str("APPLIANCE_NAME", socket.gethostname()),
    )
