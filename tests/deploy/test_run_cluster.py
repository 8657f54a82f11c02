"""``make run-cluster ARGS=--check``: compose.yaml's topology as local processes passes its check.

The check (``deploy/run_cluster.py``) starts two redis-servers on free loopback ports, two APIs
and three workers configured from compose.yaml, serves a small index on loopback, and verifies
that jobs submitted to either API run on several workers, are readable from the other API, and
land in the right Redis. Nothing here uses the test Redis.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CHECK_TIMEOUT_SECONDS = 240

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(CHECK_TIMEOUT_SECONDS + 60)
def test_the_local_cluster_passes_its_end_to_end_check() -> None:
    """Exit 0, every check reported `ok`, and jobs spread over more than one worker."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (`make redis` installs it)")
    runner = subprocess.Popen(
        [sys.executable, "-m", "deploy.run_cluster", "--check"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = runner.communicate(timeout=CHECK_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        runner.send_signal(signal.SIGTERM)  # the runner stops its processes on SIGTERM
        output, _ = runner.communicate(timeout=60)
        pytest.fail(f"the check did not finish in {CHECK_TIMEOUT_SECONDS} s:\n{output}")
    assert runner.returncode == 0, output
    results = re.findall(r"^(ok  |FAIL) ", output, re.M)
    assert results and set(results) == {"ok  "}, output
    workers = re.search(r"^ok   the jobs ran on (\d+) of the (\d+) workers$", output, re.M)
    assert workers and 1 < int(workers[1]) <= int(workers[2]) == 3, output
    assert "ok   every process stopped cleanly on SIGTERM" in output
