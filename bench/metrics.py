"""What a Prometheus scrape of /metrics costs the database: the facts `LibraryFacts` reads at
scrape time (ingest jobs waiting and running, the oldest one's age, failed jobs by reason,
open approval requests), timed over a library of 1,000,000 images on Postgres (or 100,000
with --quick; SQLite: 100,000, or 20,000 with --quick).

    .venv/bin/python bench/metrics.py            # Postgres 1M and SQLite 100k
    .venv/bin/python bench/metrics.py --quick    # Postgres 100k and SQLite 20k

Each database is made for the run (Postgres: `imglib_bench_metrics_<N>` on 127.0.0.1:5432,
dropped at the end; SQLite: a temporary file), migrated, and seeded in SQL: every image has
its ingest job, of which 1 % failed (with the reasons the app writes), 1,000 are queued and
16 running; one image in ten has an approval request, of which 5 % are open. Then the
exposition (`storage.metrics.exposition`, what /metrics answers but HTTP) runs SCRAPES times.

Figures go to stdout as `name: value` lines (SQLite's prefixed `sqlite_`). Only 127.0.0.1 is
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402 - needs ROOT on sys.path

from storage import migrate  # noqa: E402
from storage.db import make_engine, make_session_factory  # noqa: E402
from storage.metrics import LibraryFacts, exposition  # noqa: E402

SERVER = "postgresql://postgres@127.0.0.1:5432"
SCRAPES = 50
REASONS = (
    "this file is not an image (JPEG, PNG, GIF, WebP or HEIC are kept)",
    "gave up after 6 attempts: Slack answered 500 to the download; will retry",
    "the file is over 50 MB, the limit for the library",
    "gave up after 6 attempts: could not reach Cloudinary (no answer)",
)


def seed(engine: Engine, total: int) -> float:
    """Images, their jobs and approval requests, written by the database itself."""
    started = time.perf_counter()
    postgres = engine.dialect.name == "postgresql"
    # 1..n: Postgres' generate_series, or a recursive CTE on SQLite; and an empty tag list.
    series = "generate_series(1, :n) AS g(i)" if postgres else "s"
    counting = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
    prefix = "" if postgres else counting
    empty = "'{}'" if postgres else "'[]'"
    now = "'2026-11-30 09:00:00'"
    reasons = " ".join(f"WHEN {n} THEN '{r}'" for n, r in enumerate(REASONS))
    statements = (
        f"""{prefix}INSERT INTO images (team_id, slack_file_id, channel_id, channel_private,
            uploader_id, uploader_name, file_name, title, description, tags, tag_keys, sort_at,
            status, exif, created_at, updated_at)
        SELECT 'T0BENCH', 'F' || i, 'C0BENCH', false, 'U0BENCH', '', 'f.jpg', 't', '', '[]',
            '[]', {now}, 'draft', '{{}}', {now}, {now} FROM {series}""",
        f"""INSERT INTO ingest_jobs (team_id, image_id, state, attempts, next_attempt_at,
            last_error, created_at, updated_at)
        SELECT 'T0BENCH', id,
            CASE WHEN id % 100 = 0 THEN 'failed' WHEN id <= 1000 THEN 'queued'
                 WHEN id <= 1016 THEN 'running' ELSE 'stored' END,
            1, {now},
            CASE WHEN id % 100 = 0 THEN CASE (id / 100) % 4 {reasons} END END,
            {now}, {now}
        FROM images""",
        f"""INSERT INTO approval_requests (team_id, image_id, requested_by, policy, note, state,
            created_at)
        SELECT 'T0BENCH', id, 'U0BENCH', 'any', '',
            CASE WHEN id % 200 = 0 THEN 'open' ELSE 'approved' END, {now}
        FROM images WHERE id % 10 = 0""",
    )
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement.replace("'[]'", empty)), {"n": total})
        if postgres:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def measure(url: str, total: int, prefix: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        print(f"{prefix}seed_s: {seed(engine, total):.1f}", file=sys.stderr)
        facts = LibraryFacts(make_session_factory(engine), lambda: datetime.now(UTC))
        body = exposition(facts)  # warm: the first connection, the first plans
        assert b"imglib_database_up 1.0" in body, body
        timings = []
        for _ in range(SCRAPES):
            started = time.perf_counter()
            exposition(facts)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        print(f"{prefix}images: {total}")
        print(f"{prefix}scrape_ms_p50: {statistics.median(timings):.2f}")
        print(f"{prefix}scrape_ms_p99: {timings[int(len(timings) * 0.99) - 1]:.2f}")
        for line in body.decode().splitlines():
            if line.startswith("imglib_") and "_created" not in line:
                print(f"{prefix}seen {line}", file=sys.stderr)
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k on Postgres, 20k on SQLite")
    args = parser.parse_args()
    import psycopg2
    from psycopg2 import sql

    total_pg, total_lite = (100_000, 20_000) if args.quick else (1_000_000, 100_000)
    name = f"imglib_bench_metrics_{total_pg}"
    admin = psycopg2.connect(f"{SERVER}/postgres", connect_timeout=5)
    admin.autocommit = True
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    try:
        with admin.cursor() as cursor:
            cursor.execute(drop)
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        measure(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", total_pg, "")
    finally:
        with admin.cursor() as cursor:
            cursor.execute(drop)
        admin.close()
    with tempfile.TemporaryDirectory() as folder:
        measure(f"sqlite:///{folder}/metrics.db", total_lite, "sqlite_")
    return 0


if __name__ == "__main__":
    sys.exit(main())
