"""The approval requests one person is part of, for the API's list: those they were asked
to decide, or those they asked for, newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import RequestView, request_view
from storage.db import session_scope
from storage.models import ApprovalRequest, ApprovalVote


def requests_of(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    user_id: str,
    role: str,
    state: str | None,
    limit: int = 50,
) -> list[RequestView]:
    """`role` "approver": requests naming `user_id` as an approver; "requester": requests
    they made. `state` narrows to open, approved, rejected or cancelled."""
    query = select(ApprovalRequest).where(ApprovalRequest.team_id == team_id)
    if role == "approver":
        asked = select(ApprovalVote.request_id).where(ApprovalVote.approver_id == user_id)
        query = query.where(ApprovalRequest.id.in_(asked))
    else:
        query = query.where(ApprovalRequest.requested_by == user_id)
    if state is not None:
        query = query.where(ApprovalRequest.state == state)
    with session_scope(factory) as session:
        found = session.scalars(query.order_by(ApprovalRequest.id.desc()).limit(limit))
        return [request_view(session, r) for r in found]
