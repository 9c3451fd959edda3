"""What a person's App Home shows: their images still missing details, their recent uploads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.previews import Preview, preview_for
from storage.db import session_scope
from storage.media import MediaStore
from storage.models import Image
from storage.visibility import Viewer, visible_to


@dataclass(frozen=True)
class HomeImage:
    image_id: int
    title: str
    tags: Sequence[str]
    status: str
    created: date
    has_details: bool
    preview: Preview | None = None


def home_images(
    factory: sessionmaker[Session], *, team_id: str, user_id: str, media: MediaStore
) -> tuple[list[HomeImage], list[HomeImage]]:
    """(missing details, recent uploads) for `user_id`, stored images only, newest first."""
    with session_scope(factory) as session:
        # Stored ones (their original is kept), through the index of each list.
        mine = (
            select(Image)
            .where(
                Image.team_id == team_id,
                Image.uploader_id == user_id,
                Image.storage_key.is_not(None),
            )
            .order_by(Image.created_at.desc(), Image.id.desc())
        )
        missing = session.scalars(mine.where(Image.details_added_at.is_(None)).limit(15)).all()
        recent = session.scalars(mine.where(Image.details_added_at.is_not(None)).limit(20)).all()
        return [_item(i, media) for i in missing], [_item(i, media) for i in recent]


def _item(image: Image, media: MediaStore) -> HomeImage:
    return HomeImage(
        image_id=image.id,
        title=image.title,
        tags=list(image.tags),
        status=image.status,
        created=image.created_at.date(),
        has_details=image.details_added_at is not None,
        preview=preview_for(image, media),
    )


def visible_titles(
    factory: sessionmaker[Session], *, viewer: Viewer, image_ids: list[int]
) -> dict[int, str]:
    """The titles of those of these images `viewer` may see, by id."""
    if not image_ids:
        return {}
    with session_scope(factory) as session:
        return dict(
            session.execute(
                select(Image.id, Image.title).where(Image.id.in_(image_ids), visible_to(viewer))
            ).all()
        )


def titles(factory: sessionmaker[Session], *, team_id: str, image_ids: list[int]) -> dict[int, str]:
    """The titles of these images of `team_id`, by id."""
    if not image_ids:
        return {}
    with session_scope(factory) as session:
        return dict(
            session.execute(
                select(Image.id, Image.title).where(
                    Image.team_id == team_id, Image.id.in_(image_ids)
                )
            ).all()
        )
