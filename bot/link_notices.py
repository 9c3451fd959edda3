"""The notice about images that came through an upload link: one message per link and
burst ("12 images uploaded through Northwind Studio, Lisbon shoot"), to the link's admin or
channel, with a way to add their details.

A link's stored, unannounced images are announced once its uploads have paused for `quiet`
(or the oldest has waited `longest`, so a long session still gets news). Rows are claimed
with a lease (`notice_claimed_until`) and stamped `announced_at` once the notice is sent:
a process that dies in between leaves the claim to run out and the notice is sent later,
never lost; two workers never claim the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.access import UploadLink, UploadLinkImage, still_installed
from storage.db import session_scope
from storage.models import Category, IngestJob, IngestState

QUIET = timedelta(seconds=60)
LONGEST = timedelta(minutes=10)
LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class LinkNotice:
    team_id: str
    link_id: int
    label: str  # the admin's own words: escape them where they are shown
    category: str | None
    channel: str  # a conversation, or the admin's user id for their DM
    image_ids: list[int]


def claim_link_notices(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    quiet: timedelta = QUIET,
    longest: timedelta = LONGEST,
    limit: int = 2000,
) -> list[LinkNotice]:
    """Claim the notices due now, one per link: its stored images not yet announced."""
    with session_scope(factory) as session:
        query = (
            select(UploadLinkImage.image_id, UploadLinkImage.link_id, UploadLinkImage.created_at)
            .join(IngestJob, IngestJob.image_id == UploadLinkImage.image_id)
            .where(
                UploadLinkImage.announced_at.is_(None),
                IngestJob.state == IngestState.STORED,
                _unclaimed(now),
                still_installed(IngestJob.team_id),
            )
            .order_by(UploadLinkImage.image_id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=UploadLinkImage, skip_locked=True)
        pending: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
        for image_id, link_id, created_at in session.execute(query):
            pending[link_id].append((image_id, created_at))
        due = {
            link_id: [image_id for image_id, _ in rows]
            for link_id, rows in pending.items()
            if max(c for _, c in rows) <= now - quiet or min(c for _, c in rows) <= now - longest
        }
        notices = []
        for link_id, image_ids in sorted(due.items()):
            claimed = session.scalars(
                update(UploadLinkImage)
                .where(
                    UploadLinkImage.image_id.in_(image_ids),
                    UploadLinkImage.announced_at.is_(None),
                    _unclaimed(now),
                )
                .values(notice_claimed_until=now + LEASE)
                .returning(UploadLinkImage.image_id)
            ).all()
            if not claimed:
                continue
            link, category = session.execute(
                select(UploadLink, Category.name)
                .outerjoin(Category, Category.id == UploadLink.category_id)
                .where(UploadLink.id == link_id)
            ).one()
            notices.append(
                LinkNotice(
                    team_id=link.team_id,
                    link_id=link.id,
                    label=link.label,
                    category=category,
                    channel=link.notify_channel,
                    image_ids=sorted(claimed),
                )
            )
        return notices


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(
        UploadLinkImage.notice_claimed_until.is_(None),
        UploadLinkImage.notice_claimed_until < now,
    )


def mark_announced(factory: sessionmaker[Session], notice: LinkNotice, *, now: datetime) -> None:
    """The notice went out: its images are never announced again."""
    with session_scope(factory) as session:
        session.execute(
            update(UploadLinkImage)
            .where(UploadLinkImage.image_id.in_(notice.image_ids))
            .values(announced_at=now, notice_claimed_until=None)
        )
