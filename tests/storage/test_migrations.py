"""Schema migrations: empty -> head -> base -> head on both databases, idempotent."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from storage import migrate
from storage.db import make_engine
from storage.models import Base

EXPECTED = {t.name for t in Base.metadata.sorted_tables}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "postgres":
        return request.getfixturevalue("postgres_server").create_database()
    return f"sqlite:///{tmp_path / 'empty.db'}"


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        names = set(inspect(engine).get_table_names()) - {"alembic_version"}
        # SQLite's full-text index: the FTS5 table and its shadow tables.
        return {n for n in names if not n.startswith("images_fts")}
    finally:
        engine.dispose()


def test_upgrade_to_head_and_back_to_base(empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        migrate.upgrade(engine)
        assert tables(empty_database) == EXPECTED
        migrate.upgrade(engine)  # `python -m bot migrate` twice is a no-op
        assert tables(empty_database) == EXPECTED
        migrate.downgrade(engine, "base")
        assert tables(empty_database) == set()
        migrate.upgrade(engine)
        assert tables(empty_database) == EXPECTED
    finally:
        engine.dispose()


def test_models_and_migrations_agree(empty_database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(empty_database)
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"include_object": migrate.include_object_for(connection.dialect.name)},
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()
