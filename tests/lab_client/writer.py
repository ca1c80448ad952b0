"""Run in the client's namespace: keep writing reports to an address until stdin closes.

    writer.py HOST TOKEN CA_FILE [--tag T] [--interval 0.02] [--limit 300] [--progress FILE]

Each attempt POSTs a new report (customer_name "<tag>-<n>") to
https://HOST/api/v1/reports/ with the API token. Only a 201 answer counts as
written. At the end prints one JSON object: the names written (and when each was
acknowledged, wall-clock seconds), and how many attempts failed by status (0 for no
answer). With --progress, each acknowledged write also adds a line to FILE as it
happens: what a test waits on. A report stored but not acknowledged (its answer came
later than the client waits, on a busy machine) is not a write the client can count on.
"""

from __future__ import annotations

import argparse
import collections
import json
import select
import sys
import time

import requests


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("token")
    parser.add_argument("ca_file")
    parser.add_argument("--tag", default="w")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--limit", type=float, default=300)
    parser.add_argument("--progress", help="a file that gets a line per acknowledged write")
    args = parser.parse_args()
    progress = open(args.progress, "a") if args.progress else None  # noqa: SIM115
    session = requests.Session()
    session.headers["Authorization"] = f"Token {args.token}"
    written: list[str] = []
    acknowledged: dict[str, float] = {}
    failed: collections.Counter[int] = collections.Counter()
    errors: dict[str, str] = {}
    deadline = time.monotonic() + args.limit
    n = 0
    print(json.dumps({"started": True}), flush=True)
    while time.monotonic() < deadline:
        n += 1
        name = f"{args.tag}-{n}"
        try:
            answer = session.post(
                f"https://{args.host}/api/v1/reports/",
                json={
                    "representative": "writer",
                    "customer_name": name,
                    "started_at": "2026-11-26T10:00:00Z",
                    "outcome": "resolved",
                },
                timeout=(1, 5),
                verify=args.ca_file,  # per request: a session's is overridden by the environment
            )
            if answer.status_code == 201:
                written.append(name)
                acknowledged[name] = time.time()
                if progress is not None:
                    progress.write(name + "\n")
                    progress.flush()
            else:
                failed[answer.status_code] += 1
        except requests.RequestException as error:
            failed[0] += 1
            errors.setdefault(type(error).__name__, str(error)[-400:])
        ready, _, _ = select.select([sys.stdin], [], [], args.interval)
        if ready and not sys.stdin.readline():
            break
    summary = {
        "written": written,
        "acknowledged_at": acknowledged,
        "failed": dict(failed),
        "errors": errors,
        "attempts": n,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
