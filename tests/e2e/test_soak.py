"""The quick chaos soak (bench/soak.py --quick) as CI runs it: two web processes and two
workers on a throwaway Postgres the soak starts (and restarts) itself, people using the
library while faults come and go; nothing lost, nothing done twice, every error a person saw
explained by a fault, and the answers to Slack fast outside the faults.

It runs on its own (`make soak`, after `make test`): beside the suite's other processes on
a small machine, its latency goal would measure them, not the app.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.soak import MUST_BE_ZERO
from tests.conftest import ROOT
from tests.pg import cluster_tools_missing

pytestmark = [pytest.mark.postgres, pytest.mark.soak]


@pytest.mark.timeout(900)
def test_quick_soak_loses_nothing_and_does_nothing_twice() -> None:
    missing = cluster_tools_missing()
    if missing:
        pytest.skip(f"the soak starts a Postgres cluster of its own: {missing}")

    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )

    figures = dict(line.partition(": ")[::2] for line in run.stdout.splitlines())
    assert run.returncode == 0, run.stderr[-6000:]
    assert {name: figures.get(name) for name in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, "0")
    assert int(figures["images_posted"]) > 50 and int(figures["decisions_made"]) > 5
    assert float(figures["ack_p99_ms_outside_faults"]) < 100
    assert int(figures["faults"]) == 7
