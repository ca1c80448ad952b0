"""One logging configuration: every line names the site, the process and the work's request id."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import subprocess
import sys
from types import SimpleNamespace

import pytest

from appliance import logconfig, signals, tracing
from appliance.supervisor import Program
from tests.sites import ROOT, wait_until


@pytest.fixture
def captured():
    """The site's configuration, with its handler writing to a buffer."""

    def configure(log_format: str) -> io.StringIO:
        config = logconfig.logging_config(level="INFO", log_format=log_format, site="site-a")
        logging.config.dictConfig(config)
        buffer = io.StringIO()
        for handler in logging.getLogger().handlers:
            handler.setStream(buffer)
        return buffer

    yield configure
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def test_a_text_line_names_the_site_the_process_and_the_request(captured, monkeypatch):
    monkeypatch.setenv("APPLIANCE_PROCESS", "worker")
    buffer = captured("text")
    with tracing.bound("4f1c0de5", "task-9"):
        logging.getLogger("failover.sync.runs").info("Sync #%s succeeded", 12)
    line = buffer.getvalue().strip()
    assert line.endswith(
        "INFO site-a/worker request=4f1c0de5 task=task-9 failover.sync.runs: Sync #12 succeeded"
    )


def test_a_json_line_is_one_object_with_the_same_facts(captured, monkeypatch):
    monkeypatch.setenv("APPLIANCE_PROCESS", "web")
    buffer = captured("json")
    with tracing.bound("4f1c0de5"):
        logging.getLogger("appliance.requests").warning("GET /status/ 500 12 ms")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    first, second = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert first["site"] == "site-a"
    assert first["process"] == "web"
    assert first["request_id"] == "4f1c0de5"
    assert "task_id" not in first
    assert first["level"] == "WARNING"
    assert first["logger"] == "appliance.requests"
    assert first["message"] == "GET /status/ 500 12 ms"
    assert first["time"].endswith("+00:00")
    assert "request_id" not in second
    assert "ValueError: boom" in second["exc_info"]


@pytest.mark.parametrize(
    ("argv", "process"),
    [
        (["/venv/bin/gunicorn", "appliance.wsgi"], "web"),
        (["/usr/bin/python", "-m", "gunicorn", "appliance.wsgi"], "web"),
        (["celery", "-A", "appliance", "beat"], "beat"),
        (["celery", "-A", "appliance", "worker", "--queues", "network"], "network"),
        (["celery", "-A", "appliance", "worker", "--queues", "celery"], "worker"),
        (["/srv/manage.py", "failover", "status"], "failover"),
        (["/venv/bin/appliance", "migrate"], "migrate"),
    ],
)
def test_the_process_is_named_from_its_command_line_when_nobody_says(argv, process):
    assert logconfig.guess_process(argv) == process


def test_every_request_gets_an_id_that_its_answer_names(client, db):
    first = client.get("/login")
    second = client.get("/login")
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert tracing.VALID.fullmatch(first["X-Request-ID"])


def test_a_callers_request_id_is_kept_and_a_malformed_one_replaced(client, db):
    assert client.get("/login", headers={"X-Request-ID": "peer-7f3a"})["X-Request-ID"] == (
        "peer-7f3a"
    )
    forged = client.get("/login", headers={"X-Request-ID": "x\nINFO forged line"})
    assert "\n" not in forged["X-Request-ID"]


def test_a_request_is_logged_once_under_its_id(client, db, caplog):
    with caplog.at_level(logging.INFO, logger="appliance.requests"):
        response = client.get("/login", headers={"X-Request-ID": "abc123"})
    lines = [r for r in caplog.records if r.name == "appliance.requests"]
    assert [r.getMessage().rsplit(" ", 2)[0] for r in lines] == ["GET /login 200"]
    assert response["X-Request-ID"] == "abc123"


def test_a_queued_task_carries_the_request_id_and_runs_under_it():
    headers: dict[str, str] = {}
    with tracing.bound("page-1"):
        signals._carry_request_id(headers=headers)
    assert headers == {"request_id": "page-1"}

    task = SimpleNamespace(request=SimpleNamespace(request_id="page-1", headers=None))
    signals._bind_task(task_id="t-1", task=task)
    assert (tracing.request_id(), tracing.task_id()) == ("page-1", "t-1")
    signals._unbind_task(task_id="t-1")
    assert (tracing.request_id(), tracing.task_id()) == ("", "")


def test_a_task_queued_without_a_request_id_starts_one_with_its_own_id():
    task = SimpleNamespace(request=SimpleNamespace(headers={}))
    signals._bind_task(task_id="beat-task-5", task=task)
    assert tracing.request_id() == "beat-task-5"
    signals._unbind_task(task_id="beat-task-5")


def test_runsite_rotates_a_chatty_process_log_keeping_the_set_number_of_files(tmp_path):
    log = tmp_path / "logs" / "chatty.log"
    chatty = Program(
        "chatty",
        [sys.executable, "-c", "for i in range(3000): print(f'line {i:05} ' + 'x' * 60)"],
        log,
        max_bytes=20_000,
        backups=3,
    )
    chatty.start()
    # The supervisor reads its children's output between its rounds; here, the test does.
    assert wait_until(lambda: not chatty.pump(0.1), timeout=60, interval=0)
    assert chatty.process.wait(60) == 0
    chatty.close_log()
    files = sorted(path.name for path in log.parent.iterdir())
    assert files == ["chatty.log", "chatty.log.1", "chatty.log.2", "chatty.log.3"]
    for path in log.parent.iterdir():
        assert path.stat().st_size <= 20_000
    assert log.read_text().splitlines()[-1].startswith("line 02999 ")


def test_a_childs_output_reaches_its_log_file_while_it_runs(tmp_path):
    log = tmp_path / "talker.log"
    talker = Program(
        "talker",
        [sys.executable, "-u", "-c", "import time\nprint('ready', flush=True)\ntime.sleep(60)"],
        log,
    )
    talker.start()
    try:
        assert wait_until(
            lambda: talker.pump(0.1) and log.exists() and "ready" in log.read_text(),
            timeout=30,
            interval=0,
        )
    finally:
        talker.process.kill()
        talker.process.wait()
        talker.close_log()


def test_every_process_of_a_site_uses_the_one_configuration(tmp_path):
    """A management command, as workers and the web would, logs through LOGGING."""
    env = {
        "PATH": "/usr/bin:/bin",
        "APPLIANCE_DATA_DIR": str(tmp_path),
        "APPLIANCE_NAME": "site-b",
        "LOG_FORMAT": "json",
    }
    code = "import logging\nlogging.getLogger('probe').warning('hello')"
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", code],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["site"], line["process"], line["message"]) == ("site-b", "shell", "hello")
