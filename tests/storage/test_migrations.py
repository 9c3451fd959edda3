"""Schema migrations: empty -> head -> base -> head on both databases, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from storage import migrate
from storage.db import make_engine
from storage.models import Base

# slack_sdk's installation and OAuth state stores' tables (installs in any workspace).
SLACK_TABLES = {"slack_bots", "slack_installations", "slack_oauth_states"}
EXPECTED = {t.name for t in Base.metadata.sorted_tables} | SLACK_TABLES


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


def test_slack_sdk_tables_are_the_ones_its_stores_define(empty_database: str) -> None:
    """Migration 0008 makes slack_sdk's tables itself: their columns must be the ones its
    SQLAlchemy stores read and write, or an install fails in production only."""
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
    from sqlalchemy import MetaData

    metadata = MetaData()
    defined = [
        SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots"),
        SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations"),
        SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, "slack_oauth_states"),
    ]
    engine = make_engine(empty_database)
    try:
        migrate.upgrade(engine)
        inspector = inspect(engine)
        for table in defined:
            made = {c["name"]: c for c in inspector.get_columns(table.name)}
            assert set(made) == {c.name for c in table.columns}, table.name
            for column in table.columns:
                assert made[column.name]["nullable"] == column.nullable, column.name
                length = getattr(column.type, "length", None)
                assert getattr(made[column.name]["type"], "length", None) == length, column.name
    finally:
        engine.dispose()


def test_prompts_claimed_before_the_told_stamp_count_as_told(empty_database: str) -> None:
    """0014: a prompt claimed before the stamp existed was told; a shortcut's modal still
    waiting (never claimed) was not."""
    engine = make_engine(empty_database)
    try:
        migrate.upgrade(engine, "0013")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO post_prompts (team_id, channel_id, message_ts, user_id,"
                    " view_id, prompted_at, created_at) VALUES"
                    " ('T1', 'C1', '1.1', 'U1', NULL, :at, :at),"
                    " ('T1', 'C1', '2.1', 'U1', 'V1', NULL, :at)"
                ),
                {"at": datetime(2026, 11, 30, 9, 0, tzinfo=UTC)},
            )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            told = dict(
                connection.execute(
                    text("SELECT message_ts, told_at IS NOT NULL FROM post_prompts")
                ).all()
            )
        assert told == {"1.1": True, "2.1": False}
    finally:
        engine.dispose()
