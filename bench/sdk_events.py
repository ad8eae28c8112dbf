"""Writes Sentry events made by the real sentry-sdk (stack traces with source lines and local
variables, the list of installed packages, user, tags, breadcrumbs: what
bench/envelope_bench.py sends) as a JSON array, for bench/capture_instructions.sh's
BENCH_EVENTS_FILE:

    python bench/sdk_events.py /tmp/sdk_events.json [COUNT] [ISSUES]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from envelope_bench import make_envelopes


def main() -> None:
    path = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    issues = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    events = []
    for body, _ in make_envelopes(count, issues):
        lines = body.split(b"\n")
        events += [
            json.loads(lines[i + 1])
            for i in range(1, len(lines) - 1, 2)
            if json.loads(lines[i]).get("type") == "event"
        ]
    Path(path).write_text(json.dumps(events))
    print(f"{len(events)} events, {len(json.dumps(events)) // len(events):,} bytes each")


if __name__ == "__main__":
    main()
