"""Who may change an image's details, and whom they may ask to approve it: the checks every
front door runs before `bot.details.save_details`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import ApprovalError
from bot.approvers import check_approvers
from bot.details import DetailsError, can_edit
from bot.people import People
from storage.db import session_scope
from storage.models import Image

GONE = "These images are no longer in the library."
NOT_YOURS = "Only the person who posted these images, or an admin, can change their details."


def edit_refusal(
    factory: sessionmaker[Session],
    people: People,
    *,
    team_id: str,
    user_id: str,
    image_ids: list[int],
) -> str | None:
    """Why `user_id` may not edit these images, or None when they may."""
    with session_scope(factory) as session:
        images = list(
            session.scalars(select(Image).where(Image.team_id == team_id, Image.id.in_(image_ids)))
        )
    if not images or len(images) != len(image_ids):
        return GONE
    if all(i.uploader_id == user_id for i in images):
        return None
    is_admin = people.is_admin(team_id, user_id)
    if all(can_edit(i, user_id=user_id, is_admin=is_admin) for i in images):
        return None
    return NOT_YOURS


def check_details_approvers(
    factory: sessionmaker[Session],
    people: People,
    *,
    team_id: str,
    user_id: str,
    approvers: list[str],
    image_ids: list[int],
) -> None:
    """The approvers named in the details form, checked for every image (DetailsError)."""
    with session_scope(factory) as session:
        images = list(
            session.scalars(select(Image).where(Image.team_id == team_id, Image.id.in_(image_ids)))
        )
    try:
        for image in images:
            check_approvers(
                people, team_id=team_id, requester=user_id, approvers=approvers, image=image
            )
    except ApprovalError as exc:
        raise DetailsError({"approvers": str(exc)}) from None
