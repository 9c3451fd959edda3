"""The scale-out run (bench/scale.py --quick) as CI runs it: two web processes and two
workers on Postgres, kill -9 of one of each mid-run, and every exactly-once count zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
COUNTS = (
    "images_lost",
    "images_duplicated",
    "images_unexpected",
    "ingested_twice",
    "uploads_twice",
    "jobs_stuck",
    "jobs_failed",
    "prompts_missing",
    "prompts_extra",
    "prompts_twice",
    "details_lost",
    "decisions_lost",
    "decisions_duplicated",
    "cards_stale",
    "non_200",
    "unanswered_other",
)


# The run waits out a killed worker's ingest lease (60 s): more than the suite's 120 s per
# test on a loaded machine.
@pytest.mark.timeout(600)
@pytest.mark.postgres
def test_quick_scale_out_run_loses_nothing_and_does_nothing_twice(
    postgres_server: PostgresServer,
) -> None:
    env = {**os.environ, "TEST_DATABASE_URL": postgres_server.admin_dsn}
    command = [sys.executable, "bench/scale.py", "--quick"]
    run = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    figures = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line)
    assert run.returncode == 0, run.stderr[-4000:]
    assert {name: figures.get(name) for name in COUNTS} == dict.fromkeys(COUNTS, "0")
    # The run did what it says: both web processes served, one was killed, clicks landed.
    assert float(figures["events_per_s_2web_web1"]) > 0
    assert int(figures["approvals_double_clicked_across_processes"]) > 0
    assert int(figures["details_saved"]) > 0
