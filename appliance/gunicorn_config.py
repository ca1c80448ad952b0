"""Gunicorn's settings for the site's web, whoever starts it: runsite, systemd or docker-compose.

    gunicorn appliance.wsgi -c python:appliance.gunicorn_config --bind 127.0.0.1:8000

HTTPS with TLS_CERTFILE and TLS_KEYFILE. Threads: establishing a relationship
makes the peer call this site back while the request that started it is still
open. Requests are logged by the site
itself (appliance.middleware.RequestLogMiddleware), in the one format of
appliance.logconfig, so gunicorn keeps no access log of its own.

The web's workers count requests and their latencies for /metrics. Each worker
is a process of its own, so prometheus-client keeps their counts in files of a
shared folder (its multiprocess mode): PROMETHEUS_MULTIPROC_DIR, or a private
temporary folder made here. It must be set before prometheus-client is first
imported, hence here, in the master, before any worker starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Imported under another name: gunicorn reads every name here as a setting, and
# `logconfig` is one.
from appliance import files as site_files
from appliance import logconfig as site_logging

site_files.keep_private()

os.environ.setdefault(site_logging.PROCESS_VARIABLE, "web")

worker_class = "gthread"
# Held requests: the backup's request for changes waits for one (continuous
# replication), and in synchronous mode a write waits for the backup's word.
threads = 8
timeout = 60
# The files gunicorn itself makes (its workers' heartbeat files) are private too.
umask = site_files.PRIVATE_UMASK
accesslog = None
# HTTPS with the site's certificate (the peer pins it); runsite passes the same files.
certfile = os.environ.get("TLS_CERTFILE") or None
keyfile = os.environ.get("TLS_KEYFILE") or None
# No control socket (gunicorn 24+): its default path is one per user, which two
# sites on one machine would fight over, and under systemd the home is read-only.
control_socket_disable = True
logconfig_dict = site_logging.from_environment()

METRICS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"
_own_metrics_folder = not os.environ.get(METRICS_FOLDER)
if _own_metrics_folder:
    os.environ[METRICS_FOLDER] = tempfile.mkdtemp(prefix="appliance-metrics-")


def on_starting(server: object) -> None:
    """Counts of an earlier run are not this run's: start from an empty folder."""
    folder = Path(os.environ[METRICS_FOLDER])
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("*.db"):
        leftover.unlink()


def child_exit(server: object, worker: object) -> None:
    # deferred: prometheus-client reads PROMETHEUS_MULTIPROC_DIR when first imported
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: object) -> None:
    if _own_metrics_folder:
        shutil.rmtree(os.environ[METRICS_FOLDER], ignore_errors=True)
