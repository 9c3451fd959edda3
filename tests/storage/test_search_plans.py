"""Postgres: a search's page and capped count are one backward index-only scan of the
covering index, for every kind of condition. If a condition reads a column the index does
not hold, every search of that kind goes back to the table (bench/README.md: 10-25 ms at
1M images instead of 2), and this fails. (A tag filter walks it too when the tag is common
among what the viewer may see; at this size tags are planned as find-all-then-sort.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, make_session_factory, session_scope
from storage.search import Viewer, parse, search_images
from tests.seed import START, add

TEAM = "T0TEAM1"
MEMBER = Viewer(TEAM, is_guest=False, channels=frozenset({"G0PRIVATE"}))
GUEST = Viewer(TEAM, is_guest=True, channels=frozenset({"C0GUESTS"}))

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(empty_postgres_url: str) -> Iterator[Any]:
    engine = make_engine(empty_postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def library(engine: Any) -> sessionmaker[Session]:
    factory = make_session_factory(engine)
    for n in range(40):
        add(
            factory,
            f"Launch party {n}",
            tags=("events", f"t{n % 7}"),
            category="Events",
            description="rehearsal on stage",
            channel=("C0PUBLIC", "G0PRIVATE", "C0GUESTS")[n % 3],
            private=n % 3 == 1,
            uploader=f"U{n % 4}",
            when=START - timedelta(days=n),
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE images")  # the visibility map: no heap
    return factory


def page_plan(engine: Any, factory: sessionmaker[Session], query: str, viewer: Viewer) -> str:
    """The plan of the statement that fetched the page ids and the count."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_scope(factory) as session:
            page = search_images(session, parse(query), viewer=viewer)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert page.images, query
    (statement, parameters) = next((s, p) for s, p in sent if "LIMIT" in s and "sort_at" in s)
    with engine.connect() as connection:
        # The table is tiny: left alone, the planner rightly reads it whole, or takes a
        # smaller index. So, in a transaction rolled back below: only the covering index
        # (and the primary key) remain, and only index scans are allowed.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            connection.execute(text(f"SET LOCAL {setting} = off"))
        others = connection.execute(
            text(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'images'::regclass AND c.relname <> 'ix_images_search_page' "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
            )
        ).scalars()
        for name in list(others):
            connection.execute(text(f'DROP INDEX "{name}"'))
        raw = connection.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        connection.rollback()
        return plan


@pytest.mark.parametrize(
    ("query", "viewer"),
    [
        ("rehearsal", MEMBER),
        ('"launch party"', MEMBER),
        ("-draft party", MEMBER),
        ("party", GUEST),
        ("category:Events after:2026-01-01", MEMBER),
        ("by:<@U1> in:<#C0PUBLIC>", MEMBER),
        ("status:approved party", MEMBER),
    ],
)
def test_page_and_count_are_one_index_only_scan(
    engine: Any, library: sessionmaker[Session], query: str, viewer: Viewer
) -> None:
    plan = page_plan(engine, library, query, viewer)
    assert "Index Only Scan Backward using ix_images_search_page" in plan, plan
    assert "Heap Fetches: 0" in plan, plan
