"""Who may approve an image: the rules a request's approvers must pass, and the defaults a
category sets (its approvers and its policy)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import ApprovalError
from bot.people import People
from storage.db import session_scope
from storage.models import Category, Image


def check_approvers(
    people: People, *, team_id: str, requester: str, approvers: list[str], image: Image
) -> None:
    """Refuse bots, deactivated people, people who could not see the image, and the
    requester themself (self-approval is not allowed)."""
    if not approvers:
        raise ApprovalError("Name at least one person to approve it.", field="approvers")
    for approver in approvers:
        facts = people.facts(team_id, approver)
        name = facts.name or approver
        if facts.is_bot:
            raise ApprovalError(f"{name} is a bot; bots cannot approve.", field="approvers")
        if facts.deleted:
            raise ApprovalError(f"{name} is no longer in the workspace.", field="approvers")
        if approver == requester:
            raise ApprovalError(
                "You cannot approve your own request; name someone else.", field="approvers"
            )
        if (image.channel_private or facts.is_guest) and approver not in (
            people.members(team_id, image.channel_id) or frozenset()
        ):
            raise ApprovalError(
                f"{name} cannot see this image (it comes from a channel they are not in).",
                field="approvers",
            )


def default_approvers(factory: sessionmaker[Session], image: Image) -> list[str]:
    with session_scope(factory) as session:
        category = session.get(Category, image.category_id) if image.category_id else None
        return list(category.default_approvers) if category else []


def policy_of(factory: sessionmaker[Session], image: Image) -> str:
    with session_scope(factory) as session:
        policy = (
            session.scalar(select(Category.approval_policy).where(Category.id == image.category_id))
            if image.category_id
            else None
        )
    return policy or "any"
