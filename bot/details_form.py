"""What the details form starts with: the images (one title each), their current details,
the shoot date from EXIF or else the day of the post, the category and its approvers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.previews import Preview, preview_for
from bot.prompts import post_date
from storage.db import session_scope
from storage.media import MediaStore
from storage.models import Category, Image, WatchedChannel


@dataclass(frozen=True)
class ModalImage:
    image_id: int
    file_name: str
    title: str


@dataclass(frozen=True)
class DetailsPrefill:
    tags: Sequence[str] = ()
    category: tuple[int, str] | None = None  # (id, name)
    shoot_date: date | None = None
    description: str = ""
    approvers: Sequence[str] = ()


@dataclass(frozen=True)
class DetailsForm:
    images: list[ModalImage]
    has_categories: bool
    prefill: DetailsPrefill
    previews: list[Preview]


def details_form(
    factory: sessionmaker[Session], media: MediaStore, *, team_id: str, image_ids: list[int]
) -> DetailsForm | None:
    """The form for these images of `team_id` (the first one's details prefill it); None
    when none of them is in the library any more."""
    with session_scope(factory) as session:
        images = list(
            session.scalars(
                select(Image)
                .where(Image.team_id == team_id, Image.id.in_(image_ids))
                .order_by(Image.id)
            )
        )
        if not images:
            return None
        first = images[0]
        category_id = first.category_id
        if category_id is None:
            watched = session.get(WatchedChannel, (team_id, first.channel_id))
            category_id = watched.category_id if watched else None
        category = session.get(Category, category_id) if category_id else None
        shoot = first.shoot_date.date() if first.shoot_date else post_date(first.message_ts)
        has_categories = (
            session.scalar(select(Category.id).where(Category.team_id == team_id).limit(1))
            is not None
        )
        return DetailsForm(
            images=[ModalImage(i.id, i.file_name, i.title) for i in images],
            has_categories=has_categories,
            prefill=DetailsPrefill(
                tags=list(first.tags),
                category=(category.id, category.name) if category else None,
                shoot_date=shoot,
                description=first.description,
                approvers=list(category.default_approvers) if category else [],
            ),
            previews=[preview_for(i, media) for i in images[:3]],
        )
