"""The approval workflow: requests, votes, the policy, and state changes that settle once.

A request is `open` until it settles as `approved`, `rejected` or `cancelled`. Policy `any`:
the first decision settles it. Policy `all`: every approver must approve; one rejection
rejects. Every change happens inside one transaction that first locks the request row
(`SELECT ... FOR UPDATE` on Postgres; SQLite serialises writers), so two approvers clicking
at the same moment, an approve racing a reject, or Slack's retried deliveries all settle
exactly once, and only the transaction that settled it reports `settled=True` (the one that
sends the notifications).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage.access import ReviewLink
from storage.db import session_scope
from storage.models import ApprovalRequest, ApprovalVote, AuditEvent, Image, ImageStatus

MAX_REASON_LENGTH = 500
MAX_NOTE_LENGTH = 1000
NOT_AN_APPROVER = "You are not an approver of this request."
# An approver outside Slack (a client with a review link) votes as `review:<link id>`.
OUTSIDE = "review:"
OWN_REQUEST = (
    "You asked for this approval, so you cannot decide it; an approver or another admin can."
)


class ApprovalError(Exception):
    """A request cannot be made or decided; the message says why, for the person."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class VoteView:
    approver_id: str
    decision: str | None
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    card_channel: str | None
    card_ts: str | None


@dataclass(frozen=True)
class RequestView:
    """Everything the cards, threads and App Home show about one request."""

    id: int
    team_id: str
    image_id: int
    requested_by: str
    policy: str
    note: str
    due_at: datetime | None
    state: str
    decided_at: datetime | None
    created_at: datetime
    votes: list[VoteView] = field(default_factory=list)
    outside: dict[str, str] = field(default_factory=dict)  # `review:<id>` -> the client's name

    @property
    def approvers(self) -> list[str]:
        return [v.approver_id for v in self.votes]

    @property
    def workspace_approvers(self) -> list[str]:
        """The approvers who are people of the workspace (not clients with a link)."""
        return [a for a in self.approvers if not a.startswith(OUTSIDE)]

    @property
    def approved_by(self) -> list[str]:
        return [v.approver_id for v in self.votes if v.decision == "approved"]

    @property
    def rejection(self) -> VoteView | None:
        return next((v for v in self.votes if v.decision == "rejected"), None)


@dataclass(frozen=True)
class Decision:
    request: RequestView
    settled: bool  # this decision settled the request: send the notifications
    counted: bool  # the vote was recorded (False: a repeat, or the request was already settled)


def request_view(session: Session, request: ApprovalRequest) -> RequestView:
    query = select(ApprovalVote).where(ApprovalVote.request_id == request.id)
    votes = list(session.scalars(query.order_by(ApprovalVote.id)))
    links = [int(v.approver_id[len(OUTSIDE) :]) for v in votes if v.approver_id.startswith(OUTSIDE)]
    names = (
        session.execute(select(ReviewLink.id, ReviewLink.name).where(ReviewLink.id.in_(links)))
        if links
        else []
    )
    return RequestView(
        id=request.id,
        team_id=request.team_id,
        image_id=request.image_id,
        requested_by=request.requested_by,
        policy=request.policy,
        note=request.note,
        due_at=request.due_at,
        state=request.state,
        decided_at=request.decided_at,
        created_at=request.created_at,
        votes=[
            VoteView(
                v.approver_id,
                v.decision,
                v.reason,
                v.decided_by,
                v.decided_at,
                v.card_channel,
                v.card_ts,
            )
            for v in votes
        ],
        outside={f"{OUTSIDE}{link_id}": name for link_id, name in names} if links else {},
    )


def get_request(
    factory: sessionmaker[Session], *, team_id: str, request_id: int
) -> RequestView | None:
    with session_scope(factory) as session:
        request = session.scalar(
            select(ApprovalRequest).where(
                ApprovalRequest.team_id == team_id, ApprovalRequest.id == request_id
            )
        )
        return request_view(session, request) if request else None


def open_request_for(session: Session, *, team_id: str, image_id: int) -> ApprovalRequest | None:
    return session.scalar(
        select(ApprovalRequest).where(
            ApprovalRequest.team_id == team_id,
            ApprovalRequest.image_id == image_id,
            ApprovalRequest.state == "open",
        )
    )


def create_request(
    session: Session,
    *,
    image: Image,
    requested_by: str,
    approvers: Sequence[str],
    policy: str,
    note: str,
    due_at: datetime | None,
    now: datetime,
) -> ApprovalRequest:
    """Record a request inside the caller's transaction. One open request per image."""
    if open_request_for(session, team_id=image.team_id, image_id=image.id) is not None:
        raise ApprovalError(
            "This image already has an open approval request; cancel it first to ask again.",
            field="approvers",
        )
    if not approvers:
        raise ApprovalError("Name at least one person to approve it.", field="approvers")
    if image.status not in (ImageStatus.DRAFT, ImageStatus.REJECTED):
        raise ApprovalError(
            f"This image is already {image.status}; only drafts and rejected images are sent "
            "for approval.",
            field="approvers",
        )
    if due_at is not None and due_at < now:
        raise ApprovalError("The due date is in the past.", field="due")
    request = ApprovalRequest(
        team_id=image.team_id,
        image_id=image.id,
        requested_by=requested_by,
        policy=policy if policy in ("any", "all") else "any",
        note=note.strip()[:MAX_NOTE_LENGTH],
        due_at=due_at,
        state="open",
        created_at=now,
    )
    session.add(request)
    session.flush()
    for approver in dict.fromkeys(approvers):
        session.add(
            ApprovalVote(team_id=image.team_id, request_id=request.id, approver_id=approver)
        )
    image.status = ImageStatus.PENDING
    audit(
        session,
        image.team_id,
        image.id,
        requested_by,
        "approval_requested",
        {
            "request": request.id,
            "approvers": list(dict.fromkeys(approvers)),
            "policy": request.policy,
        },
        now,
    )
    return request


def request_approval(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    image_id: int,
    requested_by: str,
    approvers: Sequence[str],
    policy: str,
    note: str = "",
    due_at: datetime | None = None,
    now: datetime,
    also: Callable[[Session], Sequence[str]] | None = None,
) -> RequestView:
    """Open a request on the image, locked. `also` names more approvers from inside the same
    transaction (the clients' review links, made only if the request is)."""
    with session_scope(factory) as session:
        image = session.scalar(
            select(Image).where(Image.team_id == team_id, Image.id == image_id).with_for_update()
        )
        if image is None:
            raise ApprovalError("That image is no longer in the library.")
        request = create_request(
            session,
            image=image,
            requested_by=requested_by,
            approvers=[*approvers, *(also(session) if also else ())],
            policy=policy,
            note=note,
            due_at=due_at,
            now=now,
        )
        return request_view(session, request)


def decide(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    request_id: int,
    user_id: str,
    decision: str,
    reason: str | None,
    is_admin: bool,
    now: datetime,
    reviewer: str | None = None,
) -> Decision:
    """Record `user_id`'s decision (`reviewer`: the name a client with a review link gave,
    kept in the audit). Raises ApprovalError when they may not decide."""
    if decision not in ("approved", "rejected"):
        raise ApprovalError("Unknown decision.")
    reason = (reason or "").strip()
    if decision == "rejected" and not reason:
        raise ApprovalError("Say why it is rejected.", field="reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise ApprovalError(
            f"Keep the reason under {MAX_REASON_LENGTH} characters.", field="reason"
        )
    with session_scope(factory) as session:
        request = session.scalar(
            select(ApprovalRequest)
            .where(ApprovalRequest.team_id == team_id, ApprovalRequest.id == request_id)
            .with_for_update()
        )
        if request is None:
            raise ApprovalError("This approval request no longer exists.")
        votes = list(
            session.scalars(select(ApprovalVote).where(ApprovalVote.request_id == request.id))
        )
        mine = next((v for v in votes if v.approver_id == user_id), None)
        # Who may decide is checked before anything else, settled or not: a forged or stale
        # action value must not even learn the request's state (nor get its card shown).
        if mine is None and not is_admin:
            raise ApprovalError(NOT_AN_APPROVER)
        if mine is None and user_id == request.requested_by:
            # An admin is still the requester: deciding "as admin" would approve oneself.
            raise ApprovalError(OWN_REQUEST)
        if request.state != "open":
            return Decision(request_view(session, request), settled=False, counted=False)
        if mine is not None and mine.decision is not None:
            return Decision(request_view(session, request), settled=False, counted=False)
        as_admin = mine is None  # an admin deciding in the approvers' place, recorded as such
        if mine is None:
            mine = ApprovalVote(team_id=team_id, request_id=request.id, approver_id=user_id)
            session.add(mine)
            votes.append(mine)
        mine.decision, mine.reason = decision, reason or None
        mine.decided_by, mine.decided_at = user_id, now
        audit(
            session,
            team_id,
            request.image_id,
            user_id,
            decision,
            {"request": request.id, "reason": reason or None, "as_admin": as_admin}
            | ({"reviewer": reviewer} if reviewer else {}),
            now,
        )
        settled_as = outcome(request.policy, votes, override=as_admin)
        if settled_as is not None:
            request.state, request.decided_at = settled_as, now
            image = session.get(Image, request.image_id)
            if image is not None:
                image.status = settled_as
                image.updated_at = now
        session.flush()
        return Decision(
            request_view(session, request), settled=settled_as is not None, counted=True
        )


def outcome(policy: str, votes: list[ApprovalVote], *, override: bool) -> str | None:
    """What the votes so far settle the request as, or None while it stays open."""
    decisions = [v.decision for v in votes]
    if "rejected" in decisions:
        return "rejected"
    if policy == "any" or override:
        return "approved" if "approved" in decisions else None
    return "approved" if all(d == "approved" for d in decisions) else None


def audit(
    session: Session,
    team_id: str,
    image_id: int | None,
    actor_id: str,
    action: str,
    detail: dict[str, object],
    now: datetime,
) -> None:
    session.add(
        AuditEvent(
            team_id=team_id,
            image_id=image_id,
            actor_id=actor_id,
            action=action,
            detail=detail,
            created_at=now,
        )
    )
