"""Finding images: who may see what, one page of results, and sharing one into a channel.

Visibility comes from the workspace's membership lists (`bot.people`, cached for a
minute) and is applied inside the SQL of `storage.search`, so paging and counts never
include what the viewer may not see.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.people import People, Person
from bot.previews import Preview, preview_for
from storage.db import session_scope
from storage.media import MediaStore
from storage.models import Category, Image
from storage.query import DEFAULT_STATUSES
from storage.search import Cursor, Page, Query, Viewer, closest_tags, search_images, visible_to

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    image_id: int
    title: str
    tags: list[str]
    category: str | None
    shoot_date: str | None
    uploader_id: str
    status: str
    preview: Preview
    original_url: str | None
    can_edit: bool


@dataclass(frozen=True)
class ResultPage:
    query: Query
    results: list[Result]
    total: int
    newer: Cursor | None
    older: Cursor | None
    corrected_tags: dict[str, str]
    suggestions: list[str]


def find(
    factory: sessionmaker[Session],
    *,
    query: Query,
    viewer: Viewer,
    user_id: str,
    is_admin: bool,
    media: MediaStore,
    cursor: Cursor | None = None,
    per_page: int = 5,
) -> ResultPage:
    """One page of results, ready to render, with suggestions when there are none."""
    with session_scope(factory) as session:
        page: Page = search_images(session, query, viewer=viewer, cursor=cursor, limit=per_page)
        results = [
            _result(image, page.category_names, media, user_id=user_id, is_admin=is_admin)
            for image in page.images
        ]
        suggestions: list[str] = []
        if not results:
            for typed in (*query.tags, *query.words):
                for tag in closest_tags(session, viewer=viewer, typed=typed, limit=3):
                    if tag not in suggestions:
                        suggestions.append(tag)
    first, last = page.images[:1], page.images[-1:]
    return ResultPage(
        query=query,
        results=results,
        total=page.total,
        newer=Cursor(first[0].sort_at, first[0].id, backwards=True)
        if first and page.has_newer
        else None,
        older=Cursor(last[0].sort_at, last[0].id) if last and page.has_older else None,
        corrected_tags=page.used_tags,
        suggestions=suggestions[:5],
    )


def categories_in_view(factory: sessionmaker[Session], *, viewer: Viewer) -> list[str]:
    """The names of the categories with at least one image `viewer` would find by default
    (the filter chips): one indexed EXISTS probe per category, never a count of the
    library (bench/web.py: counting took ~1 s at 1M images)."""
    findable = (
        select(Image.id)
        .where(
            Image.team_id == viewer.team_id,
            Image.category_id == Category.id,
            Image.storage_key.is_not(None),
            Image.status.in_(DEFAULT_STATUSES),
            visible_to(viewer),
        )
        .exists()
    )
    with session_scope(factory) as session:
        return list(
            session.scalars(
                select(Category.name)
                .where(Category.team_id == viewer.team_id, findable)
                .order_by(Category.name_key)
            )
        )


def _result(
    image: Image, categories: dict[int, str], media: MediaStore, *, user_id: str, is_admin: bool
) -> Result:
    preview = preview_for(image, media)
    return Result(
        image_id=image.id,
        title=image.title or image.file_name,
        tags=list(image.tags),
        category=categories.get(image.category_id) if image.category_id else None,
        shoot_date=image.sort_at.date().isoformat(),
        uploader_id=image.uploader_id,
        status=image.status,
        preview=preview,
        # The preview's link is the signed original already, when there is one.
        original_url=preview.link or _original_url(image, media),
        can_edit=is_admin or image.uploader_id == user_id,
    )


def _original_url(image: Image, media: MediaStore) -> str | None:
    if image.storage_key:
        url = media.original_url(image.storage_key)
        if url:
            return url
    return image.permalink


def visible_image(factory: sessionmaker[Session], *, image_id: int, viewer: Viewer) -> Image | None:
    """The image if `viewer` may see it (the same rule as search)."""
    with session_scope(factory) as session:
        return session.scalar(select(Image).where(Image.id == image_id, visible_to(viewer)))


class ShareRefused(Exception):
    """Sharing is not allowed; the message says why, for the person who clicked."""


def check_share(
    image: Image,
    *,
    user_id: str,
    target_channel: str,
    target_shared_externally: bool,
    people: People,
) -> None:
    """Refuse when the sharer is not in the target channel; when the image comes from a
    private conversation and the target has anyone who is not in it; and, for an image from
    a public channel, when the target is shared with another organisation or has guests
    who are not in the image's channel (guests see only their own channels).

    Set arithmetic over two member lists and the team's guest list: no call per member."""
    target_members = people.members(image.team_id, target_channel)
    if target_members is None:
        raise ShareRefused(
            "I can't post in this conversation. Invite me first: /invite @Image Library"
        )
    if user_id not in target_members:
        raise ShareRefused("You can only share into a channel you are in.")
    if target_channel == image.channel_id:
        return
    source = people.members(image.team_id, image.channel_id) or frozenset()
    outsiders = target_members - source
    if image.channel_private and outsiders:
        raise ShareRefused(
            "This image comes from a private conversation; sharing it here would show it "
            f"to {len(outsiders)} people who are not in it."
        )
    if target_shared_externally:
        raise ShareRefused(
            "This channel is shared with another organisation; images from the library are "
            "not shared there."
        )
    guests = people.guests(image.team_id)
    if guests is None:
        raise ShareRefused(
            "I can't tell right now who in this channel is a guest, so the image is not "
            "shared here. Try again in a minute."
        )
    outside_guests = outsiders & guests
    if outside_guests:
        raise ShareRefused(
            f"This channel has {len(outside_guests)} guest(s) who may only see images from "
            "their own channels; this image is not shared here."
        )


def search(
    services: Services,
    person: Person,
    query: Query,
    *,
    cursor: Cursor | None = None,
    per_page: int = 5,
) -> ResultPage:
    """The search use case: one page of what `person` may see matching `query`."""
    return find(
        services.factory,
        query=query,
        viewer=person.viewer,
        user_id=person.user_id,
        is_admin=person.is_admin,
        media=services.media,
        cursor=cursor,
        per_page=per_page,
    )
