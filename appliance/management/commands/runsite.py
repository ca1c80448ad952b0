"""Run one complete site: its embedded Redis (unless REDIS_URL is set), web, worker and beat."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from appliance import files
from appliance.celery import app as celery_app
from appliance.embedded_redis import EmbeddedRedis, EmbeddedRedisError, socket_path_from_url
from appliance.supervisor import Program, Supervisor

# Each queue has one worker: no neighbours to synchronise with, and no second to wait for.
ALONE = ("--without-mingle", "--without-gossip")
# What Celery's workers and beat import as they start. The Celery programs are forks
# of runsite (appliance.supervisor), which imports these once, before the first fork.
CELERY_MODULES = (
    "celery.bin.celery",
    "celery.apps.worker",
    "celery.apps.beat",
    "celery.worker.consumer",
    "celery.concurrency.prefork",
    "celery.concurrency.solo",
    "kombu.transport.redis",
    "django_celery_beat.schedulers",
)


class Command(BaseCommand):
    help = "Run this site: web server (gunicorn), Celery worker and beat, and the embedded Redis."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000", help="Address:port of the web.")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--certfile",
            default=settings.TLS_CERTFILE,
            help="TLS certificate (PEM) for the web server; default TLS_CERTFILE.",
        )
        parser.add_argument(
            "--keyfile",
            default=settings.TLS_KEYFILE,
            help="TLS private key (PEM) for the web server; default TLS_KEYFILE.",
        )
        parser.add_argument(
            "--no-beat", action="store_true", help="Do not run Celery beat (another process does)."
        )

    def handle(self, *args: object, **options: object) -> None:
        # The supervisor's own lines ("started worker (pid ...)") are worth seeing
        # whatever LOG_LEVEL says of the rest.
        logging.getLogger("appliance.supervisor").setLevel(logging.INFO)
        # What an older release or another tool left readable to others becomes private.
        for folder in {settings.DATA_DIR, settings.MEDIA_ROOT}:
            files.restrict(folder)
        log_dir = settings.DATA_DIR / "logs"
        redis_server = None
        if settings.REDIS_EMBEDDED:
            redis_server = EmbeddedRedis(
                socket_path_from_url(settings.REDIS_URL), log_dir / "redis.log"
            )
            try:
                redis_server.start()
            except EmbeddedRedisError as error:
                raise CommandError(str(error)) from None
        try:
            call_command("migrate", interactive=False, verbosity=0)
            # A primary whose backup took over while it was down starts as backup.
            call_command("failover", "start-check", stdout=self.stdout)
            self.export_web_url(options)
            self.prepare_to_fork()
            supervisor = Supervisor(self.programs(options, log_dir))
            supervisor.run(
                on_started=lambda: self.stdout.write(f"Site running on {options['bind']}")
            )
        finally:
            if redis_server is not None:
                redis_server.stop()

    def export_web_url(self, options: dict) -> None:
        """Tell the worker where this site's own web answers (the primary's fencing check)."""
        if os.environ.get("WEB_SELF_URL"):
            return
        host, _, port = options["bind"].rpartition(":")
        # Every address (IPv4 "0.0.0.0", or "[::]", which takes IPv4 too): loopback answers.
        host = "127.0.0.1" if host in ("0.0.0.0", "[::]", "") else host  # noqa: S104 - reading the bind
        scheme = "https" if options["certfile"] else "http"
        os.environ["WEB_SELF_URL"] = f"{scheme}://{host}:{port}"

    def prepare_to_fork(self) -> None:
        """Import what the Celery programs need, once: each starts as a fork of this process.

        A fork shares what its parent holds open, so nothing may be: the database
        connections migrate and the start check used are closed first.
        """
        for module in CELERY_MODULES:
            importlib.import_module(module)
        celery_app.loader.import_default_modules()
        connections.close_all()

    def programs(self, options: dict, log_dir: Path) -> list[Program]:
        python = sys.executable
        # Worker class, threads, timeout and logging: appliance.gunicorn_config, shared
        # with the systemd unit and docker-compose.
        web = [
            python, "-m", "gunicorn", "appliance.wsgi",
            "--config", "python:appliance.gunicorn_config",
            "--bind", options["bind"],
            "--workers", str(options["web_workers"]),
        ]  # fmt: skip
        if options["certfile"]:
            web += ["--certfile", options["certfile"], "--keyfile", options["keyfile"]]
        commands = {
            "web": web,
            # --quiet: no banner, so that a JSON log holds JSON lines only.
            "worker": [
                python, "-m", "celery", "-A", "appliance", "--quiet", "worker",
                "--concurrency", "2", "--hostname", f"worker@{settings.APPLIANCE_NAME}",
                "--queues", "celery", *ALONE,
            ],
            # The failover path on its own: polls, address changes, announcements.
            "network": [
                python, "-m", "celery", "-A", "appliance", "--quiet", "worker",
                "--concurrency", "1", "--prefetch-multiplier", "1",
                "--hostname", f"network@{settings.APPLIANCE_NAME}", "--queues", "network",
                *ALONE,
            ],
            # Continuous replication's rounds, one at a time (on a backup; idle elsewhere).
            # A round every change: its tasks log only warnings (appliance.logconfig).
            "replication": [
                python, "-m", "celery", "-A", "appliance", "--quiet", "worker",
                "--pool", "solo", "--prefetch-multiplier", "1",
                "--hostname", f"replication@{settings.APPLIANCE_NAME}",
                "--queues", "replication", *ALONE,
            ],
        }  # fmt: skip
        if not options["no_beat"]:
            commands["beat"] = [python, "-m", "celery", "-A", "appliance", "--quiet", "beat"]
        # This command has run Django's system checks. Celery would run them again in
        # each of its programs, importing the URLconf and every view: about a fifth of
        # the CPU a Celery program spends starting (docs/BENCHMARKS.md section 6).
        checked = {"CELERY_SKIP_CHECKS": "1"}
        return [
            Program(
                name,
                argv,
                log_dir / f"{name}.log",
                env={"APPLIANCE_PROCESS": name} | ({} if name == "web" else checked),
                # gunicorn starts anew: prometheus-client must read its folder for the
                # web's metrics before it is first imported (appliance.gunicorn_config).
                fork=name != "web",
                max_bytes=settings.LOG_MAX_BYTES,
                backups=settings.LOG_BACKUP_COUNT,
            )
            for name, argv in commands.items()
        ]
