"""Images written straight into the database, for tests of search and its Slack answers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.details import tag_key
from storage.db import session_scope
from storage.models import Category, Channel, Image, Tag

TEAM = "T0TEAM1"
PUBLIC = "C0PUBLIC"
START = datetime(2026, 11, 1, 12, tzinfo=UTC)
FILE_IDS = itertools.count(1)


def add(
    factory: sessionmaker[Session],
    title: str,
    *,
    tags: tuple[str, ...] = (),
    description: str = "",
    uploader: str = "UANA",
    uploader_name: str = "Ana Admin",
    channel: str = PUBLIC,
    private: bool = False,
    team: str = TEAM,
    when: datetime = START,
    status: str = "approved",
    category: str | None = None,
    file_id: str | None = None,
    storage_key: str | None = None,
    format: str = "JPEG",
) -> int:
    """Write one stored image (and its tags, category and channel) like the app would."""
    with session_scope(factory) as session:
        category_id = None
        if category:
            row = session.scalar(
                select(Category).where(
                    Category.team_id == team, Category.name_key == category.casefold()
                )
            )
            if row is None:
                row = Category(
                    team_id=team,
                    name=category,
                    name_key=category.casefold(),
                    approval_policy="any",
                    default_approvers=[],
                    created_at=START,
                )
                session.add(row)
                session.flush()
            category_id = row.id
        for tag in tags:
            existing = session.scalar(
                select(Tag).where(Tag.team_id == team, Tag.name_key == tag_key(tag))
            )
            if existing:
                existing.use_count += 1
            else:
                session.add(
                    Tag(
                        team_id=team, name=tag, name_key=tag_key(tag), use_count=1, created_at=START
                    )
                )
        if session.get(Channel, (team, channel)) is None:
            session.add(
                Channel(team_id=team, channel_id=channel, is_private=private, created_at=START)
            )
        image = Image(
            team_id=team,
            slack_file_id=file_id or f"F{next(FILE_IDS):08d}",
            channel_id=channel,
            channel_private=private,
            uploader_id=uploader,
            uploader_name=uploader_name,
            file_name=f"{title}.jpg",
            title=title,
            description=description,
            tags=list(tags),
            tag_keys=[tag_key(t) for t in tags],
            category_id=category_id,
            status=status,
            storage_key=storage_key or f"k/{title}",
            format=format,
            exif={},
            sort_at=when,
            created_at=when,
            updated_at=when,
        )
        session.add(image)
        session.flush()
        return image.id


def categories(factory: sessionmaker[Session], names: list[str], *, team: str = TEAM) -> None:
    """Many categories at once, as `/images categories add` would make them one by one."""
    with session_scope(factory) as session:
        session.add_all(
            Category(
                team_id=team,
                name=name,
                name_key=name.casefold(),
                approval_policy="any",
                default_approvers=[],
                created_at=START,
            )
            for name in names
        )
