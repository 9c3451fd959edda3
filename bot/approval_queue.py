"""Open approval requests seen from outside the workflow: who waits on whom, the reminders
due, the outcomes still to tell, a request's history, and what a card about an image shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import RequestView, request_view
from bot.previews import Preview, preview_for
from storage.access import still_installed
from storage.db import session_scope
from storage.media import MediaStore
from storage.models import ApprovalRequest, ApprovalVote, AuditEvent, Category, Image


@dataclass(frozen=True)
class Nudge:
    request: RequestView
    escalate: bool  # tell the admins, not (only) the approvers


def claim_reminders(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    remind_after: timedelta,
    escalate_after: timedelta,
    limit: int = 200,
) -> list[Nudge]:
    """Open requests due a reminder (at most once per interval) or an escalation (once).
    Rows are claimed with FOR UPDATE SKIP LOCKED on Postgres and stamped in the same
    transaction, so two workers never send the same reminder."""
    # "Due" is part of the WHERE clause: a Python filter over the oldest `limit` open
    # requests would starve every later request once `limit` of them were recently reminded.
    reminder_due = or_(
        ApprovalRequest.last_reminded_at.is_(None),
        ApprovalRequest.last_reminded_at <= now - remind_after,
    )
    escalation_due = and_(
        ApprovalRequest.escalated_at.is_(None),
        ApprovalRequest.created_at <= now - escalate_after,
    )
    with session_scope(factory) as session:
        query = (
            select(ApprovalRequest)
            .where(
                ApprovalRequest.state == "open",
                ApprovalRequest.created_at <= now - remind_after,
                or_(reminder_due, escalation_due),
                still_installed(ApprovalRequest.team_id),
            )
            .order_by(ApprovalRequest.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        nudges = []
        for request in session.scalars(query):
            escalate = request.escalated_at is None and request.created_at <= now - escalate_after
            due = request.last_reminded_at is None or request.last_reminded_at <= now - remind_after
            if escalate:
                request.escalated_at = now
            if due:
                request.last_reminded_at = now
            nudges.append(Nudge(request_view(session, request), escalate=escalate))
        return nudges


OUTCOME_LEASE = timedelta(seconds=30)  # one teller at a time; a dead one's claim runs out
OUTCOME_GRACE = timedelta(seconds=10)  # the settling process tells first


def _untold(now: datetime) -> ColumnElement[bool]:
    return and_(
        ApprovalRequest.state != "open",
        ApprovalRequest.outcome_told_at.is_(None),
        or_(
            ApprovalRequest.outcome_claimed_until.is_(None),
            ApprovalRequest.outcome_claimed_until < now,
        ),
    )


@dataclass(frozen=True)
class Telling:
    """This process tells a settled request's outcome. `again`: an earlier teller claimed it
    and died before stamping it told, perhaps after telling: look before telling again."""

    again: bool


def claim_outcome(
    factory: sessionmaker[Session], request_id: int, *, now: datetime
) -> Telling | None:
    """Take the telling of a settled request's outcome to its requester: one process at a
    time, until it is told (`mark_outcome_told`) or the claim runs out (the process died
    first, and the worker's `untold_outcomes` finds it); None when it is not ours to tell.
    A request gone with its discarded image is told too: there is nothing left to claim."""
    with session_scope(factory) as session:
        request = session.scalar(
            select(ApprovalRequest)
            .where(ApprovalRequest.id == request_id, _untold(now))
            .with_for_update()
        )
        if request is None:
            gone = session.get(ApprovalRequest, request_id) is None
            return Telling(again=False) if gone else None
        again = request.outcome_claimed_until is not None
        request.outcome_claimed_until = now + OUTCOME_LEASE
        return Telling(again=again)


def mark_outcome_told(factory: sessionmaker[Session], request_id: int, *, now: datetime) -> None:
    with session_scope(factory) as session:
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request_id)
            .values(outcome_told_at=now, outcome_claimed_until=None)
        )


def untold_outcomes(
    factory: sessionmaker[Session], *, now: datetime, limit: int = 200
) -> list[RequestView]:
    """Requests settled over OUTCOME_GRACE ago whose outcome nobody has told or is telling:
    the process that settled them died before it could."""
    with session_scope(factory) as session:
        requests = session.scalars(
            select(ApprovalRequest)
            .where(
                _untold(now),
                ApprovalRequest.decided_at <= now - OUTCOME_GRACE,
                still_installed(ApprovalRequest.team_id),
            )
            .order_by(ApprovalRequest.id)
            .limit(limit)
        )
        return [request_view(session, request) for request in requests]


def pending_for(
    factory: sessionmaker[Session], *, team_id: str, user_id: str, limit: int = 10
) -> list[RequestView]:
    """Open requests waiting for `user_id`'s decision."""
    with session_scope(factory) as session:
        requests = session.scalars(
            select(ApprovalRequest)
            .join(ApprovalVote, ApprovalVote.request_id == ApprovalRequest.id)
            .where(
                ApprovalRequest.team_id == team_id,
                ApprovalRequest.state == "open",
                ApprovalVote.approver_id == user_id,
                ApprovalVote.decision.is_(None),
            )
            .order_by(ApprovalRequest.created_at)
            .limit(limit)
        )
        return [request_view(session, r) for r in requests]


def requested_by(
    factory: sessionmaker[Session], *, team_id: str, user_id: str, limit: int = 10
) -> list[RequestView]:
    with session_scope(factory) as session:
        requests = session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.team_id == team_id, ApprovalRequest.requested_by == user_id)
            .order_by(ApprovalRequest.created_at.desc())
            .limit(limit)
        )
        return [request_view(session, r) for r in requests]


def history(
    factory: sessionmaker[Session], *, team_id: str, image_id: int, limit: int = 40
) -> list[AuditEvent]:
    with session_scope(factory) as session:
        newest = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.team_id == team_id, AuditEvent.image_id == image_id)
                .order_by(AuditEvent.id.desc())
                .limit(limit)
            )
        )
        return newest[::-1]


@dataclass(frozen=True)
class CardImage:
    """What a card about an image shows of it."""

    title: str
    tags: list[str]
    category: str | None
    shoot_date: str | None
    preview: Preview | None
    original_url: str | None


REMOVED = CardImage("(removed from the library)", [], None, None, None, None)


def card_image(
    factory: sessionmaker[Session], media: MediaStore, *, team_id: str, image_id: int
) -> CardImage | None:
    with session_scope(factory) as session:
        image = session.scalar(select(Image).where(Image.team_id == team_id, Image.id == image_id))
        if image is None:
            return None
        category = session.get(Category, image.category_id) if image.category_id else None
        original = (
            media.original_url(image.storage_key) if image.storage_key else None
        ) or image.permalink
        return CardImage(
            title=image.title,
            tags=list(image.tags),
            category=category.name if category else None,
            shoot_date=image.sort_at.date().isoformat(),
            preview=preview_for(image, media),
            original_url=original,
        )


def thread_of(factory: sessionmaker[Session], request: RequestView) -> tuple[str, str] | None:
    """(channel, thread) of the post the request's image came from, if it came from one."""
    with session_scope(factory) as session:
        image = session.get(Image, request.image_id)
        if image is None or not image.message_ts:
            return None
        return image.channel_id, image.thread_ts or image.message_ts


def record_card(
    factory: sessionmaker[Session], *, request_id: int, approver_id: str, channel: str, ts: str
) -> None:
    """Remember where an approver's card is, to update it later."""
    with session_scope(factory) as session:
        vote = session.scalar(
            select(ApprovalVote).where(
                ApprovalVote.request_id == request_id, ApprovalVote.approver_id == approver_id
            )
        )
        if vote is not None:
            vote.card_channel, vote.card_ts = channel, ts
