"""The once-only nudge to posters whose images still lack details."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.access import still_installed
from storage.db import session_scope
from storage.models import Image, IngestJob, IngestState


@dataclass(frozen=True)
class DetailsReminder:
    team_id: str
    user_id: str
    image_ids: list[int]
    titles: list[str]


def claim_details_reminders(
    factory: sessionmaker[Session], *, now: datetime, after: timedelta, limit: int = 500
) -> list[DetailsReminder]:
    """Stamp and return the images due a reminder, grouped per poster.

    The stamp is the claim: on Postgres the candidate rows are locked with SKIP LOCKED and
    the stamp is conditional, so two workers never remind about the same image."""
    with session_scope(factory) as session:
        query = (
            select(Image.id)
            .join(IngestJob, IngestJob.image_id == Image.id)
            .where(
                IngestJob.state == IngestState.STORED,
                Image.details_added_at.is_(None),
                Image.details_reminded_at.is_(None),
                Image.created_at <= now - after,
                still_installed(Image.team_id),
            )
            .order_by(Image.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=Image, skip_locked=True)
        candidates = list(session.scalars(query))
        if not candidates:
            return []
        claimed = session.execute(
            update(Image)
            .where(Image.id.in_(candidates), Image.details_reminded_at.is_(None))
            .values(details_reminded_at=now)
            .returning(Image.id, Image.team_id, Image.uploader_id, Image.title)
        ).all()
    grouped: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for image_id, team_id, user_id, title in claimed:
        grouped[(team_id, user_id)].append((image_id, title))
    return [
        DetailsReminder(
            team_id=team_id,
            user_id=user_id,
            image_ids=[i for i, _ in items],
            titles=[t for _, t in items],
        )
        for (team_id, user_id), items in sorted(grouped.items())
    ]


def release_details_reminder(
    factory: sessionmaker[Session], reminder: DetailsReminder, *, claimed_at: datetime
) -> None:
    """Un-stamp the images of a reminder that was not sent, so the next round claims them
    again; only the stamp this claim made (`claimed_at`)."""
    with session_scope(factory) as session:
        session.execute(
            update(Image)
            .where(Image.id.in_(reminder.image_ids), Image.details_reminded_at == claimed_at)
            .values(details_reminded_at=None)
        )
