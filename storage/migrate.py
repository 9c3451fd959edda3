"""Alembic, driven from code: `python -m bot migrate` and the tests call these."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic `include_object` hook: leave indexes meant for another dialect
    (`Index(...).ddl_if(dialect=...)`) out of comparisons, as their DDL is skipped there."""

    def include_object(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
        # Full-text machinery made in SQL by the migrations, not mapped in the models, and
        # slack_sdk's installation tables (its stores define them, migration 0008 makes them).
        if kind == "table" and (name or "").startswith("slack_"):
            return False
        if name == "search_vector" or (name or "").startswith("images_fts"):
            return False
        if kind == "index" and name in ("ix_images_search_vector", "ix_images_audience_tags"):
            return False
        ddl_if = getattr(obj, "_ddl_if", None)
        if kind == "index" and ddl_if is not None and ddl_if.dialect:
            return bool(ddl_if.dialect == dialect)
        return True

    return include_object


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`. Safe to run again: an up-to-date database is a no-op."""
    config = _config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    config = _config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def revision_autogenerate(engine: Engine, message: str) -> None:
    """Developer helper: write a new revision from the models (`python -m bot makemigration`)."""
    config = _config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
