"""Run one complete site: its embedded Redis (unless REDIS_URL is set), web, worker and beat."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.embedded_redis import EmbeddedRedis, EmbeddedRedisError, socket_path_from_url
from appliance.supervisor import Program, Supervisor


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
        logging.basicConfig(
            level=logging.INFO, format=f"%(asctime)s [{settings.APPLIANCE_NAME}] %(message)s"
        )
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
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - reading the bind
        scheme = "https" if options["certfile"] else "http"
        os.environ["WEB_SELF_URL"] = f"{scheme}://{host}:{port}"

    def programs(self, options: dict, log_dir: Path) -> list[Program]:
        python = sys.executable
        web = [
            python, "-m", "gunicorn", "appliance.wsgi",
            "--bind", options["bind"],
            "--workers", str(options["web_workers"]),
            # Threads: establishing a relationship makes the peer call this site back
            # while the request that started it is still open.
            "--worker-class", "gthread", "--threads", "4",
            "--timeout", "60",
            "--access-logfile", "-",
        ]  # fmt: skip
        if options["certfile"]:
            web += ["--certfile", options["certfile"], "--keyfile", options["keyfile"]]
        programs = [
            Program("web", web, log_dir / "web.log"),
            Program(
                "worker",
                [python, "-m", "celery", "-A", "appliance", "worker", "--loglevel", "INFO",
                 "--concurrency", "2", "--hostname", f"worker@{settings.APPLIANCE_NAME}",
                 "--queues", "celery"],
                log_dir / "worker.log",
            ),
            # The failover path on its own: polls, address changes, announcements.
            Program(
                "network",
                [python, "-m", "celery", "-A", "appliance", "worker", "--loglevel", "INFO",
                 "--concurrency", "1", "--prefetch-multiplier", "1",
                 "--hostname", f"network@{settings.APPLIANCE_NAME}", "--queues", "network"],
                log_dir / "network.log",
            ),
        ]  # fmt: skip
        if not options["no_beat"]:
            programs.append(
                Program(
                    "beat",
                    [python, "-m", "celery", "-A", "appliance", "beat", "--loglevel", "INFO"],
                    log_dir / "beat.log",
                )
            )
        return programs
