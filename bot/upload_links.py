"""Agency upload links: an admin makes a link for one category (and one conversation's
rules, or the workspace's); whoever holds it uploads files into the library without being
in the workspace. A file through a link is a web upload (`bot.uploads`: the same checks,
refusal reasons and duplicate rule) on behalf of the admin who made the link.

Only the sha256 of a link's token is kept; the token is shown once, at creation. The
file count is taken with one conditional UPDATE before the file is read, so two uploads at
once cannot go past `max_files`; a file that is refused gives its slot back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.people import Person
from bot.services import Services
from bot.uploads import WORKSPACE, Audience, UploadRefused, UploadResult, audience_for, receive
from storage.access import UploadLink, UploadLinkImage
from storage.db import session_scope
from storage.models import AuditEvent, Category

DEFAULT_DAYS = 7
MAX_DAYS = 90
MAX_FILES = 10_000
MAX_LABEL = 200
DIRECT_MESSAGE = "dm"  # the notice goes to the admin who made the link
AUDIT_ACTION = "uploaded_through_link"

ADMINS_ONLY = "Only admins can manage upload links."
NOT_OPEN = {
    "expired": "This upload link has expired. Ask whoever sent it for a new one.",
    "revoked": "This upload link was turned off. Ask whoever sent it for a new one.",
    "full": "This upload link has taken all the files it was made for. "
    "Ask whoever sent it for a new one.",
}


class LinkError(Exception):
    """The link cannot be made or used as asked; the message says why."""


class LinkClosed(LinkError):
    """The link is expired, revoked or full: nothing is taken through it."""

    def __init__(self, state: str) -> None:
        super().__init__(NOT_OPEN[state])
        self.state = state


@dataclass(frozen=True)
class LinkView:
    """An upload link as its pages and lists show it (never its token)."""

    id: int
    team_id: str
    label: str
    category_id: int | None
    category: str | None
    conversation_id: str
    conversation_private: bool
    notify_channel: str
    created_by: str
    max_files: int | None
    files_received: int
    expires_at: datetime
    revoked_at: datetime | None
    created_at: datetime

    def state(self, now: datetime) -> str:
        """live, expired, revoked or full."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.max_files is not None and self.files_received >= self.max_files:
            return "full"
        return "live"

    @property
    def remaining(self) -> int | None:
        """How many more files it takes (None: no limit)."""
        if self.max_files is None:
            return None
        return max(0, self.max_files - self.files_received)

    @property
    def for_workspace(self) -> bool:
        return self.conversation_id == WORKSPACE


@dataclass(frozen=True)
class NewLink:
    link: LinkView
    token: str  # shown once; only its hash is kept


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(
    services: Services,
    admin: Person,
    *,
    label: str,
    category_id: int | None,
    conversation: str,
    days: int = DEFAULT_DAYS,
    max_files: int | None = None,
    notify: str = DIRECT_MESSAGE,
) -> NewLink:
    """Make a link into `category_id` whose images follow `conversation`'s rules
    ("workspace", or a conversation `admin` is in) and whose notices go to `notify` (the
    admin's DM, or a conversation of theirs the app is in). Raises LinkError."""
    if not admin.is_admin:
        raise LinkError(ADMINS_ONLY)
    label = " ".join(label.split())
    if not label:
        raise LinkError("Give the link a label, such as the agency and the shoot.")
    if len(label) > MAX_LABEL:
        raise LinkError(f"Keep the label under {MAX_LABEL} characters.")
    if not 1 <= days <= MAX_DAYS:
        raise LinkError(f"A link lasts from 1 to {MAX_DAYS} days.")
    if max_files is not None and not 1 <= max_files <= MAX_FILES:
        raise LinkError(f"The most files a link takes is between 1 and {MAX_FILES}.")
    try:
        audience = audience_for(services, admin, conversation)
    except UploadRefused as exc:
        raise LinkError(str(exc)) from exc
    notify_channel = _notice_channel(services, admin, notify)
    token = secrets.token_urlsafe(32)
    now = services.clock()
    with session_scope(services.factory) as session:
        category = session.get(Category, category_id) if category_id is not None else None
        if category is None or category.team_id != admin.team_id:
            raise LinkError("Choose the category the images go to.")
        link = UploadLink(
            token_hash=token_hash(token),
            team_id=admin.team_id,
            label=label,
            category_id=category.id,
            conversation_id=audience.conversation_id,
            conversation_private=audience.private,
            notify_channel=notify_channel,
            created_by=admin.user_id,
            max_files=max_files,
            files_received=0,
            expires_at=now + timedelta(days=days),
            revoked_at=None,
            created_at=now,
        )
        session.add(link)
        session.flush()
        return NewLink(link=_view(link, category.name), token=token)


def _notice_channel(services: Services, admin: Person, notify: str) -> str:
    if notify in ("", DIRECT_MESSAGE):
        return admin.user_id
    if notify not in services.people.conversations_of(admin.team_id, admin.user_id):
        raise LinkError("Send the notices to your DM or to a channel you are in.")
    if not services.directory.app_is_in(admin.team_id, notify):
        raise LinkError(
            "I am not in that channel, so I could not post there. Invite me first "
            "(/invite @Image Library), or send the notices to your DM."
        )
    return notify


def list_links(factory: sessionmaker[Session], admin: Person) -> list[LinkView]:
    """The team's upload links, newest first."""
    if not admin.is_admin:
        raise LinkError(ADMINS_ONLY)
    with session_scope(factory) as session:
        rows = session.execute(
            select(UploadLink, Category.name)
            .outerjoin(Category, Category.id == UploadLink.category_id)
            .where(UploadLink.team_id == admin.team_id)
            .order_by(UploadLink.id.desc())
        ).all()
        return [_view(link, name) for link, name in rows]


def revoke_link(
    factory: sessionmaker[Session], admin: Person, *, link_id: int, now: datetime
) -> bool:
    """Turn a link off for good; False when the team has no such link (or it was off)."""
    if not admin.is_admin:
        raise LinkError(ADMINS_ONLY)
    with session_scope(factory) as session:
        result = session.execute(
            update(UploadLink)
            .where(
                UploadLink.id == link_id,
                UploadLink.team_id == admin.team_id,
                UploadLink.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def find_link(factory: sessionmaker[Session], token: str) -> LinkView | None:
    """The link this token opens, whatever its state; None for a token nobody made."""
    with session_scope(factory) as session:
        row = session.execute(
            select(UploadLink, Category.name)
            .outerjoin(Category, Category.id == UploadLink.category_id)
            .where(UploadLink.token_hash == token_hash(token))
        ).first()
        return _view(row[0], row[1]) if row else None


def receive_through(
    services: Services, link: LinkView, *, path: Path, name: str, content_type: str
) -> UploadResult:
    """Take one file through `link` (whose page found it): hold a slot, ingest the file as a
    web upload by the link's admin, into its category, named after the link. Raises
    LinkClosed (nothing is taken) or UploadRefused."""
    _take_slot(services, link)
    try:
        admin = services.people.person(link.team_id, link.created_by)
        result = receive(
            services,
            admin,
            path=path,
            name=name,
            content_type=content_type,
            audience=Audience(link.conversation_id, link.conversation_private),
            category_id=link.category_id,
            uploader_name=link.label,
        )
    except Exception:
        _give_slot_back(services.factory, link.id)
        raise
    if result.state == "failed":
        _give_slot_back(services.factory, link.id)
        return result
    now = services.clock()
    with session_scope(services.factory) as session:
        session.add(
            UploadLinkImage(
                image_id=result.image_id, link_id=link.id, team_id=link.team_id, created_at=now
            )
        )
        session.add(
            AuditEvent(
                team_id=link.team_id,
                image_id=result.image_id,
                actor_id=link.created_by,
                action=AUDIT_ACTION,
                detail={"link_id": link.id, "label": link.label},
                created_at=now,
            )
        )
    return result


def _take_slot(services: Services, link: LinkView) -> None:
    """One conditional UPDATE: on both databases two uploads cannot both take the last
    slot (Postgres re-checks the WHERE after waiting for the other's row lock; SQLite
    runs one writer at a time)."""
    now = services.clock()
    with session_scope(services.factory) as session:
        taken = session.execute(
            update(UploadLink)
            .where(
                UploadLink.id == link.id,
                UploadLink.revoked_at.is_(None),
                UploadLink.expires_at > now,
                (UploadLink.max_files.is_(None))
                | (UploadLink.files_received < UploadLink.max_files),
            )
            .values(files_received=UploadLink.files_received + 1)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            return
        fresh = session.get_one(UploadLink, link.id)
        state = _view(fresh, None).state(now)
    raise LinkClosed("full" if state == "live" else state)


def _give_slot_back(factory: sessionmaker[Session], link_id: int) -> None:
    with session_scope(factory) as session:
        session.execute(
            update(UploadLink)
            .where(UploadLink.id == link_id, UploadLink.files_received > 0)
            .values(files_received=UploadLink.files_received - 1)
        )


def _view(link: UploadLink, category: str | None) -> LinkView:
    return LinkView(
        id=link.id,
        team_id=link.team_id,
        label=link.label,
        category_id=link.category_id,
        category=category,
        conversation_id=link.conversation_id,
        conversation_private=link.conversation_private,
        notify_channel=link.notify_channel,
        created_by=link.created_by,
        max_files=link.max_files,
        files_received=link.files_received,
        expires_at=link.expires_at,
        revoked_at=link.revoked_at,
        created_at=link.created_at,
    )
