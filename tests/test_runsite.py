"""What `manage.py runsite` starts, read from the programs it hands its supervisor."""

from __future__ import annotations

from appliance.management.commands.runsite import Command

OPTIONS = {
    "bind": "127.0.0.1:8000",
    "web_workers": 1,
    "certfile": "",
    "keyfile": "",
    "no_beat": False,
}


def test_the_celery_programs_skip_the_checks_runsite_has_run(tmp_path):
    programs = {program.name: program for program in Command().programs(OPTIONS, tmp_path)}
    assert Command.requires_system_checks == "__all__"
    assert programs["web"].env == {"APPLIANCE_PROCESS": "web"}
    for name in ("worker", "network", "replication", "beat"):
        assert programs[name].env == {"APPLIANCE_PROCESS": name, "CELERY_SKIP_CHECKS": "1"}


def test_the_celery_programs_are_forks_of_runsite_and_the_web_a_new_interpreter(tmp_path):
    programs = {program.name: program for program in Command().programs(OPTIONS, tmp_path)}
    assert {name for name, program in programs.items() if program.fork} == {
        "worker",
        "network",
        "replication",
        "beat",
    }
    for program in programs.values():
        assert program.argv[1:3] == ["-m", "gunicorn" if program.name == "web" else "celery"]
