"""Withdrawing approval requests: the requester (or an admin) cancels one, or the image it is
about leaves the library. The image goes back to draft; the cards say so (the caller tells)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import ApprovalError, Decision, audit, open_request_for, request_view
from storage.db import session_scope
from storage.models import ApprovalRequest, Image, ImageStatus


def cancel(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    request_id: int,
    user_id: str,
    is_admin: bool,
    now: datetime,
    reason: str = "cancelled",
) -> Decision:
    """Cancel an open request (its requester or an admin). The image goes back to draft."""
    with session_scope(factory) as session:
        request = session.scalar(
            select(ApprovalRequest)
            .where(ApprovalRequest.team_id == team_id, ApprovalRequest.id == request_id)
            .with_for_update()
        )
        if request is None:
            raise ApprovalError("This approval request no longer exists.")
        if request.requested_by != user_id and not is_admin:
            raise ApprovalError("Only the person who asked, or an admin, can cancel it.")
        if request.state != "open":
            return Decision(request_view(session, request), settled=False, counted=False)
        request.state, request.decided_at = "cancelled", now
        image = session.get(Image, request.image_id)
        if image is not None and image.status == ImageStatus.PENDING:
            image.status = ImageStatus.DRAFT
        audit(
            session,
            team_id,
            request.image_id,
            user_id,
            "approval_cancelled",
            {"request": request.id, "why": reason},
            now,
        )
        return Decision(request_view(session, request), settled=True, counted=True)


def cancel_for_image(
    session: Session, *, image: Image, actor_id: str, now: datetime
) -> ApprovalRequest | None:
    """Deleting or archiving an image cancels its open request (caller's transaction)."""
    request = open_request_for(session, team_id=image.team_id, image_id=image.id)
    if request is not None:
        request.state, request.decided_at = "cancelled", now
        audit(
            session,
            image.team_id,
            image.id,
            actor_id,
            "approval_cancelled",
            {"request": request.id, "why": "image removed"},
            now,
        )
    return request
