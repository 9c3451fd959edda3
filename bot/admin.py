"""Which channels the library watches, and the team's categories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.details import normalise_tag
from storage.db import session_scope
from storage.models import AuditEvent, Category, Image, WatchedChannel
from storage.search import Viewer, escape_like, visible_to

MAX_CATEGORY_LENGTH = 75  # a Slack option's text limit


class AdminError(Exception):
    """A request a person made cannot be done; the message (plain text: a front door
    escapes it for its own format) says what to do instead."""


# -- watched channels ---------------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    channel_id: str
    category: str | None
    added_by: str


def watch(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    channel_id: str,
    category_name: str | None,
    actor_id: str,
    now: datetime,
) -> Watched:
    """Watch a channel (or change its default category). Idempotent."""
    with session_scope(factory) as session:
        category = (
            find_category(session, team_id=team_id, name=category_name) if category_name else None
        )
        row = session.get(WatchedChannel, (team_id, channel_id))
        if row is None:
            session.add(
                WatchedChannel(
                    team_id=team_id,
                    channel_id=channel_id,
                    category_id=category.id if category else None,
                    added_by=actor_id,
                    created_at=now,
                )
            )
        else:
            row.category_id = category.id if category else None
        _audit(session, team_id, actor_id, "channel_watched", {"channel": channel_id}, now=now)
        return Watched(channel_id, category.name if category else None, actor_id)


def unwatch(
    factory: sessionmaker[Session], *, team_id: str, channel_id: str, actor_id: str, now: datetime
) -> bool:
    """Stop watching; False when the channel was not watched. Stored images stay."""
    with session_scope(factory) as session:
        result = session.execute(
            delete(WatchedChannel).where(
                WatchedChannel.team_id == team_id, WatchedChannel.channel_id == channel_id
            )
        )
        removed = bool(result.rowcount)  # type: ignore[attr-defined]
        if removed:
            _audit(
                session, team_id, actor_id, "channel_unwatched", {"channel": channel_id}, now=now
            )
        return removed


def watched_channels(factory: sessionmaker[Session], *, team_id: str) -> list[Watched]:
    with session_scope(factory) as session:
        rows = session.execute(
            select(WatchedChannel.channel_id, Category.name, WatchedChannel.added_by)
            .outerjoin(Category, Category.id == WatchedChannel.category_id)
            .where(WatchedChannel.team_id == team_id)
            .order_by(WatchedChannel.created_at)
        ).all()
        return [Watched(channel_id=r[0], category=r[1], added_by=r[2]) for r in rows]


# -- categories ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryInfo:
    id: int
    name: str
    images: int
    default_approvers: list[str]
    policy: str


def find_category(session: Session, *, team_id: str, name: str) -> Category:
    key = normalise_tag(name).casefold()
    category = session.scalar(
        select(Category).where(Category.team_id == team_id, Category.name_key == key)
    )
    if category is None:
        raise AdminError(
            f"There is no category called \u201c{normalise_tag(name)}\u201d. "
            "See them with `/images categories`."
        )
    return category


def list_categories(
    factory: sessionmaker[Session], *, team_id: str, viewer: Viewer | None = None
) -> list[CategoryInfo]:
    """The team's categories by name. `images` counts the images `viewer` may see (the rule
    of search: a count must not tell anyone what a private channel holds); without a viewer
    (the details modal's list, which shows no counts) nothing is counted and it is 0."""
    if viewer is not None and viewer.team_id != team_id:
        raise ValueError("the viewer belongs to another team")
    with session_scope(factory) as session:
        counts = (
            select(Image.category_id, func.count().label("n"))
            .where(visible_to(viewer) if viewer is not None else false())
            .group_by(Image.category_id)
            .subquery()
        )
        rows = session.execute(
            select(Category, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.category_id == Category.id)
            .where(Category.team_id == team_id)
            .order_by(Category.name_key)
        ).all()
        return [
            CategoryInfo(c.id, c.name, int(n), list(c.default_approvers), c.approval_policy)
            for c, n in rows
        ]


def find_categories(
    factory: sessionmaker[Session], *, team_id: str, typed: str, limit: int = 100
) -> list[tuple[int, str]]:
    """(id, name) of the categories whose name starts with `typed`, then those containing
    it, alphabetically: the category picker's options however many categories there are."""
    key = normalise_tag(typed).casefold()
    escaped = escape_like(key)
    query = select(Category.id, Category.name).where(Category.team_id == team_id)
    with session_scope(factory) as session:
        starts = query.where(Category.name_key.like(f"{escaped}%", escape="\\"))
        found = [
            (i, n) for i, n in session.execute(starts.order_by(Category.name_key).limit(limit))
        ]
        if key and len(found) < limit:
            inside = query.where(
                Category.name_key.like(f"%{escaped}%", escape="\\"),
                Category.name_key.not_like(f"{escaped}%", escape="\\"),
            )
            found += [
                (i, n)
                for i, n in session.execute(
                    inside.order_by(Category.name_key).limit(limit - len(found))
                )
            ]
        return found


def add_category(
    factory: sessionmaker[Session], *, team_id: str, name: str, actor_id: str, now: datetime
) -> str:
    clean = _category_name(name)
    try:
        with session_scope(factory) as session:
            session.add(
                Category(
                    team_id=team_id,
                    name=clean,
                    name_key=clean.casefold(),
                    approval_policy="any",
                    default_approvers=[],
                    created_at=now,
                )
            )
            session.flush()
            _audit(session, team_id, actor_id, "category_added", {"name": clean}, now=now)
    except IntegrityError:
        raise AdminError(f"The category \u201c{clean}\u201d already exists.") from None
    return clean


def rename_category(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    old: str,
    new: str,
    actor_id: str,
    now: datetime,
) -> str:
    clean = _category_name(new)
    try:
        with session_scope(factory) as session:
            category = find_category(session, team_id=team_id, name=old)
            before = category.name
            category.name, category.name_key = clean, clean.casefold()
            session.flush()
            detail: dict[str, object] = {"from": before, "to": clean}
            _audit(session, team_id, actor_id, "category_renamed", detail, now=now)
    except IntegrityError:
        raise AdminError(f"The category \u201c{clean}\u201d already exists.") from None
    return clean


def remove_category(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    name: str,
    move_to: str | None,
    actor_id: str,
    now: datetime,
) -> int:
    """Remove a category. One in use needs `move_to`, where its images go. Returns how
    many images moved."""
    with session_scope(factory) as session:
        category = find_category(session, team_id=team_id, name=name)
        in_use = (
            session.scalar(
                select(func.count())
                .select_from(Image)
                .where(Image.team_id == team_id, Image.category_id == category.id)
            )
            or 0
        )
        target = None
        if move_to:
            target = find_category(session, team_id=team_id, name=move_to)
            if target.id == category.id:
                raise AdminError("Pick a different category to move the images to.")
        elif in_use:
            raise AdminError(
                f"\u201c{category.name}\u201d has {in_use} "
                f"image{'s' if in_use != 1 else ''}. Say where they go: "
                f"`/images categories remove {category.name} --move-to <other>`."
            )
        if target is not None:
            session.execute(
                update(Image)
                .where(Image.team_id == team_id, Image.category_id == category.id)
                .values(category_id=target.id, updated_at=now)
            )
            session.execute(
                update(WatchedChannel)
                .where(WatchedChannel.team_id == team_id, WatchedChannel.category_id == category.id)
                .values(category_id=target.id)
            )
        session.delete(category)
        _audit(
            session,
            team_id,
            actor_id,
            "category_removed",
            {"name": category.name, "moved_to": target.name if target else None, "images": in_use},
            now=now,
        )
        return int(in_use)


def set_approvers(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    category: str,
    approvers: list[str],
    policy: str,
    actor_id: str,
    now: datetime,
) -> CategoryInfo:
    """A category's default approvers (prefilled in the details form) and its policy."""
    if policy not in ("any", "all"):
        raise AdminError("The policy is `any` (first decision settles) or `all`.")
    with session_scope(factory) as session:
        row = find_category(session, team_id=team_id, name=category)
        row.default_approvers = list(dict.fromkeys(approvers))
        row.approval_policy = policy
        _audit(
            session,
            team_id,
            actor_id,
            "approvers_set",
            {"category": row.name, "approvers": row.default_approvers, "policy": policy},
            now=now,
        )
        return CategoryInfo(row.id, row.name, 0, list(row.default_approvers), policy)


def _category_name(raw: str) -> str:
    name = normalise_tag(raw)
    if not name:
        raise AdminError("Give the category a name, e.g. `/images categories add Marketing`.")
    if len(name) > MAX_CATEGORY_LENGTH:
        raise AdminError(f"A category name can have at most {MAX_CATEGORY_LENGTH} characters.")
    return name


def _audit(
    session: Session,
    team_id: str,
    actor_id: str,
    action: str,
    detail: dict[str, object],
    *,
    now: datetime,
) -> None:
    session.add(
        AuditEvent(
            team_id=team_id,
            image_id=None,
            actor_id=actor_id,
            action=action,
            detail=detail,
            created_at=now,
        )
    )
