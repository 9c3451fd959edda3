"""Whether a conversation is private, kept true: images from a private conversation are for
its members only, so a channel whose privacy is unknown counts as private.

Slack tells us three ways: the `channel_type` of every message event (recorded with the
image), the `channel_convert_to_private` / `channel_convert_to_public` messages posted in a
channel when it changes, and `conversations.info`, which the worker asks for every channel
not checked for a day (so a change whose message we missed is caught too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.access import still_installed
from storage.db import session_scope
from storage.models import Channel, Image

log = logging.getLogger(__name__)

RECHECK_AFTER = timedelta(days=1)


def public_conversations(factory: sessionmaker[Session], *, team_id: str) -> frozenset[str]:
    """The conversations the library knows to be public."""
    with session_scope(factory) as session:
        return frozenset(
            session.scalars(
                select(Channel.channel_id).where(
                    Channel.team_id == team_id, Channel.is_private.is_(False)
                )
            )
        )


def set_privacy(
    factory: sessionmaker[Session], *, team_id: str, channel_id: str, private: bool, now: datetime
) -> bool:
    """Record what Slack said; the channel's images follow. True when something changed."""
    with session_scope(factory) as session:
        return _apply(session, team_id=team_id, channel_id=channel_id, private=private, now=now)


def _apply(
    session: Session, *, team_id: str, channel_id: str, private: bool, now: datetime
) -> bool:
    row = session.get(Channel, (team_id, channel_id), with_for_update=True)
    if row is None:
        return False  # no images from it: nothing to show or hide
    changed = row.is_private != private
    row.is_private, row.checked_at = private, now
    if changed:
        session.execute(
            update(Image)
            .where(Image.team_id == team_id, Image.channel_id == channel_id)
            .values(channel_private=private)
        )
        log.info("channel %s is now %s", channel_id, "private" if private else "public")
    return changed


def recheck(
    factory: sessionmaker[Session],
    *,
    ask: Callable[[str, str], bool | None],
    now: datetime,
    limit: int = 50,
) -> int:
    """Ask the directory about channels never checked or not checked for a day. A channel it will
    not describe (the bot was removed, it was deleted) stays as it is: private when unknown.
    Returns how many were checked."""
    with session_scope(factory) as session:
        query = (
            select(Channel.team_id, Channel.channel_id)
            .where(
                or_(Channel.checked_at.is_(None), Channel.checked_at < now - RECHECK_AFTER),
                still_installed(Channel.team_id),
            )
            .order_by(Channel.checked_at.is_not(None), Channel.checked_at)
            .limit(limit)
        )
        due = list(session.execute(query).all())
    checked = 0
    for team_id, channel_id in due:
        private = ask(team_id, channel_id)  # outside any transaction: a network call
        with session_scope(factory) as session:
            if private is None:
                row = session.get(Channel, (team_id, channel_id))
                if row is not None:
                    row.checked_at = now  # asked; try again tomorrow, still private
            else:
                _apply(
                    session,
                    team_id=team_id,
                    channel_id=channel_id,
                    private=private,
                    now=now,
                )
        checked += 1
    return checked
