"""Image details: the tag rules, validating what a person typed, saving it, and who may.

Plain values in, domain results out: the Slack modal is parsed in `handlers/slack/details/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import ApprovalError, create_request
from bot.reviews import NewLink, Reviewer, check_reviewers, issue_links
from storage.db import session_scope
from storage.models import (
    AuditEvent,
    Category,
    Image,
    ImageStatus,
    Tag,
)
from storage.query import FIRST_PHOTO_YEAR
from storage.search import (
    Viewer,
    closest_tags,
    escape_like,
    normalise_tag,
    tag_key,
    tag_visible_to,
)

MAX_TAG_LENGTH = 50
MAX_TAGS = 20
MAX_TITLE_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 3000


class DetailsError(Exception):
    """What a person typed cannot be saved; `fields` maps a field name to what to fix."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def clean_tags(raw_tags: Iterable[str]) -> list[str]:
    """Apply the tag rules; raise DetailsError({"tags": ...}) when they are broken.

    Unique case-insensitively, keeping the first spelling; at most 50 characters each; at
    most 20 per image. Empty entries are dropped."""
    seen: set[str] = set()
    tags: list[str] = []
    for raw in raw_tags:
        tag = normalise_tag(raw)
        if not tag or tag_key(tag) in seen:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise DetailsError(
                {
                    "tags": f"A tag can have at most {MAX_TAG_LENGTH} characters: "
                    f"\u201c{tag[:20]}\u2026\u201d has {len(tag)}."
                }
            )
        seen.add(tag_key(tag))
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise DetailsError(
            {"tags": f"An image can have at most {MAX_TAGS} tags; you gave {len(tags)}."}
        )
    return tags


@dataclass(frozen=True)
class DetailsInput:
    """What the poster typed into the details modal."""

    titles: dict[int, str]  # image id -> title
    tags: Sequence[str] = ()
    category_id: int | None = None
    shoot_date: date | None = None
    description: str = ""
    approvers: Sequence[str] = ()
    reviewers: Sequence[Reviewer] = ()  # clients outside Slack: one review link each


@dataclass(frozen=True)
class SavedDetails:
    image_ids: list[int]
    tags: list[str]
    category: str | None
    shoot_date: date | None
    details: DetailsInput  # as validated and saved
    approval_request_ids: list[int] = field(default_factory=list)
    # One link per client, named on every request made: its token is known only here.
    review_links: list[NewLink] = field(default_factory=list)


def validate(details: DetailsInput, *, today: date) -> DetailsInput:
    """Return the cleaned input, or raise DetailsError naming each field to fix."""
    errors: dict[str, str] = {}
    titles: dict[int, str] = {}
    for image_id, raw in details.titles.items():
        title = normalise_tag(raw)
        if not title:
            errors[f"title:{image_id}"] = "Give the image a title."
        elif len(title) > MAX_TITLE_LENGTH:
            errors[f"title:{image_id}"] = f"A title can have at most {MAX_TITLE_LENGTH} characters."
        titles[image_id] = title
    tags: list[str] = []
    try:
        tags = clean_tags(details.tags)
    except DetailsError as exc:
        errors.update(exc.fields)
    if details.shoot_date is not None and details.shoot_date > today + timedelta(days=1):
        errors["shoot_date"] = (
            f"The shoot date {details.shoot_date.isoformat()} is in the future; "
            "pick the day the photos were taken."
        )
    if details.shoot_date is not None and details.shoot_date.year < FIRST_PHOTO_YEAR:
        errors["shoot_date"] = "That date is before photography was invented."
    description = details.description.strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        errors["description"] = f"At most {MAX_DESCRIPTION_LENGTH} characters, please."
    approvers = list(dict.fromkeys(details.approvers))
    reviewers: list[Reviewer] = []
    try:
        reviewers = check_reviewers(details.reviewers)
    except ApprovalError as exc:
        errors["reviewers"] = str(exc)
    if errors:
        raise DetailsError(errors)
    return DetailsInput(
        titles=titles,
        tags=tags,
        category_id=details.category_id,
        shoot_date=details.shoot_date,
        description=description,
        approvers=[a for a in approvers if a],
        reviewers=reviewers,
    )


def save_details(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    actor_id: str,
    details: DetailsInput,
    now: datetime,
) -> SavedDetails:
    """Save validated details on every image in `details.titles`, keep the tag vocabulary's
    use counts right, record an approval request when approvers (or clients: one review
    link each, covering every request) were named, and audit it."""
    with session_scope(factory) as session:
        images = list(
            session.scalars(
                select(Image)
                .where(Image.team_id == team_id, Image.id.in_(details.titles))
                .with_for_update()
            )
        )
        if len(images) != len(details.titles):
            raise DetailsError({"title": "Some of these images were deleted meanwhile."})
        category = None
        if details.category_id is not None:
            category = session.scalar(
                select(Category).where(
                    Category.team_id == team_id, Category.id == details.category_id
                )
            )
            if category is None:
                raise DetailsError({"category": "That category was removed; pick another."})
        request_ids = []
        links: list[NewLink] = []
        for image in images:
            _retag(session, team_id=team_id, old=image.tags, new=list(details.tags), now=now)
            changed = {
                "title": image.title != details.titles[image.id],
                "tags": image.tags != list(details.tags),
                "category": image.category_id != details.category_id,
                "shoot_date": _day(image.shoot_date) != details.shoot_date,
                "description": image.description != details.description,
            }
            image.title = details.titles[image.id]
            image.tags = list(details.tags)
            image.tag_keys = [tag_key(t) for t in details.tags]
            image.category_id = details.category_id
            if changed["shoot_date"]:
                image.shoot_date = (
                    datetime.combine(details.shoot_date, time(12), tzinfo=UTC)
                    if details.shoot_date
                    else None
                )
                image.sort_at = image.shoot_date or image.created_at
            image.description = details.description
            first_time = image.details_added_at is None
            image.details_added_at = image.details_added_at or now
            image.updated_at = now
            session.add(
                AuditEvent(
                    team_id=team_id,
                    image_id=image.id,
                    actor_id=actor_id,
                    action="details_added" if first_time else "details_edited",
                    detail={"changed": sorted(k for k, v in changed.items() if v)},
                    created_at=now,
                )
            )
            # Only a draft is sent for approval from this form: editing the details of an
            # image that is pending, approved or rejected does not reset its approval.
            if (details.approvers or details.reviewers) and image.status == ImageStatus.DRAFT:
                if details.reviewers and not links:
                    links = issue_links(
                        session,
                        team_id=team_id,
                        reviewers=details.reviewers,
                        created_by=actor_id,
                        now=now,
                    )
                request = create_request(
                    session,
                    image=image,
                    requested_by=actor_id,
                    approvers=[*details.approvers, *(link.approver_id for link in links)],
                    policy=category.approval_policy if category else "any",
                    note="",
                    due_at=None,
                    now=now,
                )
                request_ids.append(request.id)
        return SavedDetails(
            image_ids=[i.id for i in images],
            tags=list(details.tags),
            category=category.name if category else None,
            shoot_date=details.shoot_date,
            details=details,
            approval_request_ids=request_ids,
            review_links=links,
        )


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


def forget_tags(session: Session, *, team_id: str, tags: list[str]) -> None:
    """An image with these tags left the library: lower their use counts."""
    _retag(session, team_id=team_id, old=tags, new=[], now=datetime.now(UTC))


def _retag(
    session: Session, *, team_id: str, old: list[str], new: list[str], now: datetime
) -> None:
    old_keys = {tag_key(t) for t in old}
    new_keys = {tag_key(t) for t in new}
    for tag in new:
        key = tag_key(tag)
        if key in old_keys:
            continue
        row = session.scalar(select(Tag).where(Tag.team_id == team_id, Tag.name_key == key))
        if row is None:
            try:
                with session.begin_nested():
                    session.add(
                        Tag(team_id=team_id, name=tag, name_key=key, use_count=1, created_at=now)
                    )
                continue
            except IntegrityError:  # someone added the same new tag at the same moment
                row = session.scalars(
                    select(Tag).where(Tag.team_id == team_id, Tag.name_key == key)
                ).one()
        row.use_count += 1
    gone = old_keys - new_keys
    if gone:
        session.execute(
            update(Tag)
            .where(Tag.team_id == team_id, Tag.name_key.in_(gone), Tag.use_count > 0)
            .values(use_count=Tag.use_count - 1)
        )


def can_edit(image: Image, *, user_id: str, is_admin: bool) -> bool:
    return is_admin or image.uploader_id == user_id


def suggest_tags(session: Session, *, viewer: Viewer, typed: str, limit: int = 20) -> list[str]:
    """Existing tags for autocomplete, only those on images `viewer` may see: prefix matches
    first, then substring, then close spellings (the search module's trigram / sequence
    matching), most used first."""
    key = tag_key(typed)
    query = select(Tag.name).where(
        Tag.team_id == viewer.team_id, Tag.use_count > 0, tag_visible_to(viewer)
    )
    if key:
        escaped = escape_like(key)
        prefix = list(
            session.scalars(
                query.where(Tag.name_key.like(f"{escaped}%", escape="\\"))
                .order_by(Tag.use_count.desc(), Tag.name_key)
                .limit(limit)
            )
        )
        # The tag typed exactly is always offered, however little used: else the typed text
        # would be offered as a new tag, a second spelling of the same tag.
        exact = session.scalar(query.where(Tag.name_key == key))
        if exact is not None and exact not in prefix:
            prefix = [*prefix[: limit - 1], exact]
        if len(prefix) < limit:
            inner = session.scalars(
                query.where(
                    Tag.name_key.like(f"%{escaped}%", escape="\\"),
                    Tag.name_key.not_like(f"{escaped}%", escape="\\"),
                )
                .order_by(Tag.use_count.desc(), Tag.name_key)
                .limit(limit - len(prefix))
            )
            prefix.extend(inner)
        if len(prefix) < limit:
            for close in closest_tags(session, viewer=viewer, typed=typed, limit=5):
                if close not in prefix:
                    prefix.append(close)
        return prefix[:limit]
    return list(session.scalars(query.order_by(Tag.use_count.desc(), Tag.name_key).limit(limit)))
