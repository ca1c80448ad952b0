"""A program for the supervisor's tests: `python -m tests.supervised_probe EXIT_CODE`.

It says what it was started with, on both of its outputs, and exits with EXIT_CODE
(or raises, given "raise").
"""

import os
import sys

command = open("/proc/self/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()  # noqa: SIM115
print(f"argv={sys.argv[1:]} own-session={os.getsid(0) == os.getpid()}", flush=True)
print(f"PROBE={os.environ.get('PROBE')} ps={command}", file=sys.stderr, flush=True)
if sys.argv[1] == "raise":
    raise RuntimeError("the probe failed on purpose")
sys.exit(int(sys.argv[1]))
