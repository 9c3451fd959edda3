"""App Home benchmark: the two lists of a person's Home tab (`bot.home.home_images`: their
newest stored images missing details, and their newest with details) for an uploader with
many images and none of one kind, on Postgres and SQLite, with and without the two partial
indexes of migration 0010 (the schema before it: `(team_id, uploader_id, created_at)`), in
the same run.

    .venv/bin/python bench/home.py                  # 200,000 images per database
    .venv/bin/python bench/home.py --quick          # 20,000
    .venv/bin/python bench/home.py --postgres URL   # a throwaway database on that server

Seeded with one INSERT ... SELECT per database: nine in ten images are UBUSY's, none of them
with details (the worst case for the "with details" list, which found none after reading
all of them); the rest are UDONE's, all with details (the worst case for the other list).
Figures go to stdout as `name: value` lines (SQLite's prefixed `sqlite_`), progress to
stderr. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import finish, on_both_databases  # noqa: E402
from bench.ingest import info  # noqa: E402

TEAM = "T0HOME"
RUNS = 200
# Nine in ten images are UBUSY's (never detailed), the rest UDONE's (all detailed).
SEED_SQL = """
INSERT INTO images (team_id, slack_file_id, channel_id, channel_private, uploader_id,
    uploader_name, file_name, title, description, tags, tag_keys, status, storage_key,
    exif, details_added_at, sort_at, created_at, updated_at)
SELECT '{team}', 'F' || n, 'C0HOME', {false}, CASE WHEN n % 10 = 0 THEN 'UDONE' ELSE 'UBUSY' END,
    '', 'photo.jpg', 'photo ' || n, '', {empty}, {empty}, 'draft', 'k/' || n, '{{}}',
    CASE WHEN n % 10 = 0 THEN {stamp} END, {stamp}, {stamp}, {stamp}
FROM {numbers}
"""
OLD_INDEX = (
    "CREATE INDEX ix_images_team_uploader_created ON images (team_id, uploader_id, created_at)"
)
NEW_INDEXES = ("ix_images_home_missing", "ix_images_home_recent")


def seed(engine: Any, total: int) -> None:
    from sqlalchemy import text

    postgres = engine.dialect.name == "postgresql"
    sql = SEED_SQL.format(
        team=TEAM,
        false="false" if postgres else "0",
        empty="'{}'" if postgres else "'[]'",
        stamp=(
            "TIMESTAMPTZ '2026-01-01' + n * INTERVAL '1 minute'"
            if postgres
            else "datetime('2026-01-01', '+' || n || ' minutes')"
        ),
        numbers=(
            f"generate_series(1, {total}) AS n"
            if postgres
            else f"(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
            f"WHERE n < {total}) SELECT n FROM s)"
        ),
    )
    with engine.begin() as connection:
        connection.execute(text(sql))
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def time_home(factory: Any, media: Any, user_id: str) -> list[float]:
    from bot.home import home_images

    took = []
    for _ in range(RUNS):
        started = time.perf_counter()
        home_images(factory, team_id=TEAM, user_id=user_id, media=media)
        took.append((time.perf_counter() - started) * 1000)
    return took


def without_the_indexes(engine: Any) -> None:
    """Back to the schema before migration 0010 (only the home lists' indexes differ)."""
    from sqlalchemy import text

    with engine.begin() as connection:
        for name in NEW_INDEXES:
            connection.execute(text(f"DROP INDEX {name}"))
        connection.execute(text(OLD_INDEX))
        connection.execute(text("ANALYZE"))


def run(url: str, prefix: str, total: int, media_dir: Path) -> tuple[list[str], dict[str, float]]:
    from bot.home import home_images
    from storage.db import make_engine, make_session_factory
    from storage.media import LocalStore

    engine = make_engine(url)
    factory = make_session_factory(engine)
    media = LocalStore(media_dir, signing_key=b"bench-home", public_base_url=None)
    problems: list[str] = []
    figures: dict[str, float] = {}
    try:
        started = time.perf_counter()
        seed(engine, total)
        seconds = time.perf_counter() - started
        info(f"{prefix or 'postgres'}: seeded {total:,} images in {seconds:.1f} s")
        for user, full, empty in (("UBUSY", 0, 1), ("UDONE", 1, 0)):
            lists = home_images(factory, team_id=TEAM, user_id=user, media=media)
            if not lists[full] or lists[empty]:
                problems.append(f"{prefix}{user}: home lists of {[len(x) for x in lists]}")
        for schema in ("indexed", "before"):
            if schema == "before":
                without_the_indexes(engine)
            for user in ("UBUSY", "UDONE"):
                took = sorted(time_home(factory, media, user))
                name = f"{prefix}{schema}_{user.lower()}"
                figures[f"{name}_p50_ms"] = statistics.median(took)
                figures[f"{name}_p95_ms"] = took[int(0.95 * len(took))]
        for user in ("ubusy", "udone"):
            ratio = (
                figures[f"{prefix}before_{user}_p50_ms"] / figures[f"{prefix}indexed_{user}_p50_ms"]
            )
            figures[f"{prefix}ratio_{user}"] = ratio
    finally:
        engine.dispose()
    return problems, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 images per database")
    parser.add_argument("--postgres", metavar="URL", help="the Postgres server to use")
    args = parser.parse_args()
    total = 20_000 if args.quick else 200_000
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-home-") as work:
        problems, figures = on_both_databases(
            Path(work),
            args.postgres,
            lambda url, prefix: run(url, prefix, total, Path(work) / "media"),
        )
    print(f"images: {total}")
    for name, value in figures.items():
        print(f"{name}: {value:.2f}")
    return finish(started, problems)


if __name__ == "__main__":
    sys.exit(main())
