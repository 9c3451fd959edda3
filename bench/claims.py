"""Claim benchmark: how long taking the next due ingest job takes (`bot.ingest_queue.
claim_next`, run before every ingest) with a long queue, on Postgres and SQLite, beside the
single statement it replaced (both kinds of due job in one OR, ordered together), timed
alternately in the same run.

    .venv/bin/python bench/claims.py                  # 100,000 queued jobs per database
    .venv/bin/python bench/claims.py --quick          # 10,000
    .venv/bin/python bench/claims.py --postgres URL   # a throwaway database on that server

A long queue is what a Slack outage or a bulk import leaves: if each claim reads the whole
queue, the worker drains it slower the longer it is. Each timed claim is real (it takes the
job and commits); the job is then marked stored, untimed, as a finished ingest would leave
it. The replaced statement is timed alone (its SELECT, no UPDATE and no commit) in a
transaction rolled back after, so the comparison flatters it. Figures go to stdout
as `name: value` lines (SQLite's prefixed `sqlite_`), progress to stderr. Only 127.0.0.1 is
contacted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import finish, on_both_databases  # noqa: E402
from bench.home import seed  # noqa: E402
from bench.ingest import info  # noqa: E402

CLAIMS = 200
# One queued job per seeded image, due in the order the images were made (a minute apart).
JOBS_SQL = """
INSERT INTO ingest_jobs (team_id, image_id, state, attempts, next_attempt_at, created_at,
    updated_at)
SELECT team_id, id, 'queued', 0, created_at, created_at, created_at FROM images
"""


def replaced_statement() -> Any:
    """The claim's statement before: queued-and-due OR lease-ran-out, ordered together."""
    from bot import ingest_queue

    jobs = ingest_queue.IngestJob.__table__
    return (
        ingest_queue._CLAIMING.where(*ingest_queue._DUE)
        .order_by(jobs.c.next_attempt_at, jobs.c.id)
        .limit(1)
        .with_for_update(of=jobs, skip_locked=True)
    )


def run(url: str, prefix: str, total: int, claims: int) -> tuple[list[str], dict[str, float]]:
    from sqlalchemy import text, update

    from bot.ingest_queue import Claim, claim_next
    from storage.db import make_engine, make_session_factory
    from storage.models import IngestJob, IngestState

    engine = make_engine(url)
    factory = make_session_factory(engine)
    replaced = replaced_statement()
    problems: list[str] = []
    took: dict[str, list[float]] = {"claim": [], "replaced": []}
    try:
        started = time.perf_counter()
        seed(engine, total)
        with engine.begin() as connection:
            connection.execute(text(JOBS_SQL))
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        seconds = time.perf_counter() - started
        info(f"{prefix or 'postgres'}: {total:,} jobs queued in {seconds:.1f} s")
        now = datetime.now(UTC)
        expected_next = 1
        for _ in range(claims):
            started = time.perf_counter()
            with engine.connect() as connection:
                row = connection.execute(replaced, {"now": now}).first()
                connection.rollback()
            took["replaced"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            claimed = claim_next(factory, now=now)
            took["claim"].append((time.perf_counter() - started) * 1000)
            if not isinstance(claimed, Claim) or row is None or row.id != claimed.job_id:
                problems.append(f"{prefix}claim {expected_next}: {claimed!r}, replaced: {row!r}")
                break
            expected_next += 1
            with engine.begin() as connection:
                connection.execute(
                    update(IngestJob)
                    .where(IngestJob.id == claimed.job_id)
                    .values(state=IngestState.STORED, lease_until=None)
                )
    finally:
        engine.dispose()
    figures: dict[str, float] = {}
    for name, values in took.items():
        values.sort()
        figures[f"{prefix}{name}_p50_ms"] = statistics.median(values)
        figures[f"{prefix}{name}_p95_ms"] = values[int(0.95 * len(values))]
    figures[f"{prefix}ratio_p50"] = (
        figures[f"{prefix}replaced_p50_ms"] / figures[f"{prefix}claim_p50_ms"]
    )
    return problems, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 queued jobs per database")
    parser.add_argument("--postgres", metavar="URL", help="the Postgres server to use")
    args = parser.parse_args()
    total = 10_000 if args.quick else 100_000
    claims = 50 if args.quick else CLAIMS
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-claims-") as work:
        problems, figures = on_both_databases(
            Path(work), args.postgres, lambda url, prefix: run(url, prefix, total, claims)
        )
    print(f"queued_jobs: {total}")
    print(f"claims_timed: {claims}")
    for name, value in figures.items():
        print(f"{name}: {value:.2f}")
    return finish(started, problems)


if __name__ == "__main__":
    sys.exit(main())
