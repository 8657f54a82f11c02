"""Serve packse scenarios from a loopback index until interrupted.

    python -m tests.indexserver --scenario PATH.toml [--scenario ...] [--port N]

Prints each index URL and the ``POST /resolve`` body for it, one JSON object a line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tests.conformance.scenarios import ScenarioError, load_scenario
from tests.indexserver.server import IndexServer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.indexserver", description=__doc__)
    parser.add_argument(
        "--scenario", type=Path, action="append", required=True, help="a packse scenario TOML"
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    args = parser.parse_args(argv)
    try:
        scenarios = [load_scenario(path) for path in args.scenario]
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with IndexServer(port=args.port) as server:
        for scenario in scenarios:
            url = server.add_index(scenario.index)
            line = {"scenario": scenario.key, "url": url, "request": scenario.make_request(url)}
            print(json.dumps(line), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
