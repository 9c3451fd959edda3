"""Client review links: approvers outside the workspace.

Each client named on an ask gets a `ReviewLink` (a random token of which only the SHA-256 is
kept, valid LINK_DAYS days, revocable). Their vote is an `approval_votes` row whose approver
is `review:<link id>`, so it counts under the request's policy like anyone's and is decided
through `bot.approvals.decide` (the same row lock, the same settle-once). One link can be
named on several requests: the review page shows every request whose votes name it.

Revoking a link removes its vote from the open requests that still wait for it (a vote
already cast stays). A request left without approvers is cancelled; under `all`, one whose
remaining approvers have all approved is approved: nobody is left to wait for.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import (
    OUTSIDE,
    ApprovalError,
    RequestView,
    VoteView,
    audit,
    outcome,
    request_approval,
    request_view,
)
from storage.access import ReviewLink
from storage.db import session_scope
from storage.models import ApprovalRequest, ApprovalVote, Image, ImageStatus

LINK_DAYS = 14
MAX_REVIEWERS = 10
MAX_NAME = 100
FIELD = "reviewers"
EXAMPLE = "Clara Silva <clara@example.com>"
# Real-looking, not RFC 5322: one @, a dotted domain, nothing that breaks a header.
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
NOT_YOURS = "Only the person who asked, or an admin, can revoke a review link."


@dataclass(frozen=True)
class Reviewer:
    name: str
    email: str


@dataclass(frozen=True)
class NewLink:
    """A link just made. The token is known only now: it is e-mailed or handed over."""

    link_id: int
    name: str
    email: str
    token: str
    expires_at: datetime
    emailed: bool = False

    @property
    def approver_id(self) -> str:
        return f"{OUTSIDE}{self.link_id}"


@dataclass(frozen=True)
class ReviewItem:
    request: RequestView
    title: str
    has_media: bool
    mine: VoteView | None  # this link's vote (None once revoked before it was cast)


@dataclass(frozen=True)
class ReviewPage:
    """What a review link shows: its state, and the requests that name it."""

    link_id: int
    team_id: str
    name: str
    expires_at: datetime
    state: str  # active, expired or revoked
    items: list[ReviewItem]

    @property
    def approver_id(self) -> str:
        return f"{OUTSIDE}{self.link_id}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_name(name: str) -> str:
    return " ".join(name.split())


def check_reviewer(name: str, email: str) -> Reviewer:
    """One client, as a form or the API gives them; ApprovalError (field `reviewers`)."""
    name, email = clean_name(name), email.strip()
    if not EMAIL.fullmatch(email) or len(email) > 254:
        raise ApprovalError(
            f"\u201c{email[:80]}\u201d does not look like an e-mail address.", field=FIELD
        )
    name = name or email.split("@", 1)[0]
    if len(name) > MAX_NAME:
        raise ApprovalError(f"Keep each name under {MAX_NAME} characters.", field=FIELD)
    return Reviewer(name=name, email=email)


def check_reviewers(reviewers: Sequence[Reviewer]) -> list[Reviewer]:
    """Validated, one per e-mail address, at most MAX_REVIEWERS."""
    unique: dict[str, Reviewer] = {}
    for reviewer in reviewers:
        checked = check_reviewer(reviewer.name, reviewer.email)
        unique.setdefault(checked.email.lower(), checked)
    if len(unique) > MAX_REVIEWERS:
        raise ApprovalError(
            f"Name at most {MAX_REVIEWERS} people outside Slack on one request.", field=FIELD
        )
    return list(unique.values())


def parse_reviewers(text: str) -> list[Reviewer]:
    """The "People outside Slack" field: one per line, `Clara Silva <clara@example.com>` or
    `clara@example.com, Clara Silva` (or just the address)."""
    reviewers = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        angled = re.fullmatch(r"(.*)<([^<>]*)>", line)
        if angled:
            name, email = angled.group(1).strip().strip('"'), angled.group(2)
        else:
            email, _, name = line.partition(",")
        try:
            reviewers.append(check_reviewer(name, email))
        except ApprovalError as exc:
            raise ApprovalError(
                f"Line {number}: {exc} Write one person per line, like {EXAMPLE}.", field=FIELD
            ) from None
    return check_reviewers(reviewers)


def issue_links(
    session: Session,
    *,
    team_id: str,
    reviewers: Sequence[Reviewer],
    created_by: str,
    now: datetime,
    days: int = LINK_DAYS,
) -> list[NewLink]:
    """One link per reviewer, in the caller's transaction (name its `approver_id` on as many
    requests as it should cover)."""
    made = []
    for reviewer in reviewers:
        token = secrets.token_urlsafe(32)
        row = ReviewLink(
            token_hash=token_hash(token),
            team_id=team_id,
            name=reviewer.name,
            email=reviewer.email,
            created_by=created_by,
            expires_at=now + timedelta(days=days),
            revoked_at=None,
            created_at=now,
        )
        session.add(row)
        session.flush()
        made.append(NewLink(row.id, row.name, row.email, token, row.expires_at))
    return made


def request_with_reviewers(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    image_id: int,
    requested_by: str,
    approvers: Sequence[str],
    reviewers: Sequence[Reviewer],
    policy: str,
    note: str,
    due_at: datetime | None,
    now: datetime,
) -> tuple[RequestView, list[NewLink]]:
    """`bot.approvals.request_approval` with clients too: their links and the request are
    made in one transaction (no link for a request that was refused)."""
    links: list[NewLink] = []

    def issue(session: Session) -> list[str]:
        links.extend(
            issue_links(
                session, team_id=team_id, reviewers=reviewers, created_by=requested_by, now=now
            )
        )
        return [link.approver_id for link in links]

    request = request_approval(
        factory,
        team_id=team_id,
        image_id=image_id,
        requested_by=requested_by,
        approvers=approvers,
        policy=policy,
        note=note,
        due_at=due_at,
        now=now,
        also=issue,
    )
    return request, links


def review_page(factory: sessionmaker[Session], *, token: str, now: datetime) -> ReviewPage | None:
    """The link `token` opens, or None when no link has it."""
    with session_scope(factory) as session:
        link = session.scalar(select(ReviewLink).where(ReviewLink.token_hash == token_hash(token)))
        if link is None:
            return None
        approver = f"{OUTSIDE}{link.id}"
        requests = session.scalars(
            select(ApprovalRequest)
            .join(ApprovalVote, ApprovalVote.request_id == ApprovalRequest.id)
            .where(ApprovalRequest.team_id == link.team_id, ApprovalVote.approver_id == approver)
            .order_by(ApprovalRequest.id)
        ).all()
        items = []
        for request in requests:
            image = session.get(Image, request.image_id)
            view = request_view(session, request)
            items.append(
                ReviewItem(
                    view,
                    title=(image.title or image.file_name or "Untitled") if image else "(removed)",
                    # Bytes only while the request is open: settled or cancelled, it is over.
                    has_media=bool(image and image.storage_key) and view.state == "open",
                    mine=next((v for v in view.votes if v.approver_id == approver), None),
                )
            )
        state = "revoked" if link.revoked_at else "expired" if link.expires_at <= now else "active"
        return ReviewPage(link.id, link.team_id, link.name, link.expires_at, state, items)


def media_key(
    factory: sessionmaker[Session], *, token: str, request_id: int, now: datetime
) -> str | None:
    """The storage key of the image of a request an active link names, else None: the only
    image bytes a link may fetch."""
    page = review_page(factory, token=token, now=now)
    if page is None or page.state != "active":
        return None
    item = next((i for i in page.items if i.request.id == request_id), None)
    if item is None or not item.has_media:
        return None
    with session_scope(factory) as session:
        image = session.get(Image, item.request.image_id)
        return image.storage_key if image is not None else None


@dataclass(frozen=True)
class Revoked:
    name: str
    changed: list[tuple[RequestView, bool]]  # each request it left, and whether that settled it


def revoke(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    link_id: int,
    actor_id: str,
    is_admin: bool,
    now: datetime,
) -> Revoked:
    """Revoke a link (its creator or an admin) and take its pending vote off the open
    requests, settling those that then wait for nobody (see the module's docstring)."""
    with session_scope(factory) as session:
        link = session.scalar(
            select(ReviewLink)
            .where(ReviewLink.team_id == team_id, ReviewLink.id == link_id)
            .with_for_update()
        )
        if link is None:
            raise ApprovalError("That review link does not exist.")
        if link.created_by != actor_id and not is_admin:
            raise ApprovalError(NOT_YOURS)
        if link.revoked_at is not None:
            return Revoked(link.name, [])
        link.revoked_at = now
        approver = f"{OUTSIDE}{link.id}"
        waiting = session.scalars(
            select(ApprovalRequest.id)
            .join(ApprovalVote, ApprovalVote.request_id == ApprovalRequest.id)
            .where(
                ApprovalRequest.state == "open",
                ApprovalVote.approver_id == approver,
                ApprovalVote.decision.is_(None),
            )
            .order_by(ApprovalRequest.id)
        ).all()
        changed = []
        for request_id in waiting:
            request = session.scalar(
                select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
            )
            if request is None or request.state != "open":
                continue
            session.execute(
                delete(ApprovalVote).where(
                    ApprovalVote.request_id == request.id,
                    ApprovalVote.approver_id == approver,
                    ApprovalVote.decision.is_(None),
                )
            )
            detail = {"request": request.id, "reviewer": link.name}
            audit(session, team_id, request.image_id, actor_id, "review_link_revoked", detail, now)
            settled = _settle_without(session, request, actor_id=actor_id, now=now)
            changed.append((request_view(session, request), settled))
        return Revoked(link.name, changed)


def _settle_without(
    session: Session, request: ApprovalRequest, *, actor_id: str, now: datetime
) -> bool:
    """After an approver left a request: settle it when nobody is left to wait for."""
    votes = list(session.scalars(select(ApprovalVote).where(ApprovalVote.request_id == request.id)))
    image = session.get(Image, request.image_id)
    if not votes:
        request.state, request.decided_at = "cancelled", now
        if image is not None and image.status == ImageStatus.PENDING:
            image.status = ImageStatus.DRAFT
        why = {"request": request.id, "why": "no approvers left"}
        audit(session, request.team_id, request.image_id, actor_id, "approval_cancelled", why, now)
        return True
    settled_as = outcome(request.policy, votes, override=False)
    if settled_as is None:
        return False
    request.state, request.decided_at = settled_as, now
    if image is not None:
        image.status, image.updated_at = settled_as, now
    return True


def links_of(factory: sessionmaker[Session], *, link_ids: Sequence[int]) -> dict[int, ReviewLink]:
    """The review links by id (for showing who was asked and whether a link still works)."""
    if not link_ids:
        return {}
    with session_scope(factory) as session:
        rows = session.scalars(select(ReviewLink).where(ReviewLink.id.in_(link_ids))).all()
        for row in rows:
            session.expunge(row)
        return {row.id: row for row in rows}


def outside_line(action: str, actor_id: str, detail: dict[str, object]) -> str | None:
    """How the history tells a client's decision, or None for anyone else's event."""
    if not actor_id.startswith(OUTSIDE) or action not in ("approved", "rejected"):
        return None
    who = f"{detail.get('reviewer') or 'a client'} (client, via review link)"
    reason = detail.get("reason")
    return f"{action.capitalize()} by {who}" + (f": {reason}" if reason else "")


def review_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/review/{token}"


def request_titles(factory: sessionmaker[Session], request: RequestView) -> str:
    """The request's image, named for an e-mail: “Title”."""
    with session_scope(factory) as session:
        image = session.get(Image, request.image_id)
        title = (image.title or image.file_name) if image else ""
    return f"\u201c{title}\u201d" if title else "an image"
