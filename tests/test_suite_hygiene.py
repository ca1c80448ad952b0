"""The suite keeps its own rules: tests wait for events, not for durations.

A test that sleeps a fixed time is a bet on how fast the machine is: too short
on a busy machine (it fails), too long on an idle one (it wastes the time). A
wait belongs in `wait_until` on the event itself; a short pause inside such a
loop (at most a second) is the loop's own pacing.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
LONGEST_PAUSE_SECONDS = 1.0


# The calls that pause for a fixed time, and how many of their unit make a second:
# `time.sleep` (and `asyncio.sleep`) in seconds, Playwright's `wait_for_timeout` in ms.
PAUSES = {"sleep": 1, "wait_for_timeout": 1000}


def fixed_sleeps(source: str) -> list[tuple[int, float]]:
    """(line, seconds) of every `sleep(N)` or `wait_for_timeout(N)` (any object's, or a
    bare name's) with a literal N over a second."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        called = node.func
        name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
        argument = node.args[0]
        if (
            name in PAUSES
            and isinstance(argument, ast.Constant)
            and isinstance(argument.value, int | float)
            and argument.value / PAUSES[name] > LONGEST_PAUSE_SECONDS
        ):
            found.append((node.lineno, argument.value / PAUSES[name]))
    return found


def test_no_test_sleeps_a_fixed_time_longer_than_a_second():
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line}: a fixed pause of {seconds} s"
        for path in sorted(TESTS.rglob("*.py"))
        for line, seconds in fixed_sleeps(path.read_text())
    ]
    assert not offenders, (
        "Wait for the event (tests.sites.wait_until) instead of sleeping:\n" + "\n".join(offenders)
    )


def test_the_rule_catches_a_long_sleep_and_lets_a_short_pause_pass():
    source = "import time\ntime.sleep(0.25)\ntime.sleep(8)\nsleep(2.5)\ntime.sleep(delay)\n"
    assert fixed_sleeps(source) == [(3, 8), (4, 2.5)]


def test_the_rule_catches_a_browser_waiting_a_fixed_time_in_milliseconds():
    source = "page.wait_for_timeout(250)\npage.wait_for_timeout(5_000)\n"
    assert fixed_sleeps(source) == [(2, 5.0)]
