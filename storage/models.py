"""SQLAlchemy 2.x typed models. Every row carries `team_id`: one deployment may serve many
workspaces, and every query filters on it.

Tags live twice on purpose: `images.tags` (a `text[]` with a GIN index on Postgres, JSON on
SQLite) answers "images with tag X, newest first" without a join, and the `tags` table is the
team's vocabulary with use counts for autocomplete.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

import storage.access  # noqa: F401 - its tables belong to the same metadata (migrations, tests)
from storage.base import Base, Id, TagList


class ImageStatus(enum.StrEnum):
    DRAFT = "draft"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ARCHIVED = "archived"


class IngestState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    STORED = "stored"
    FAILED = "failed"


# What a search condition may read besides (team_id, sort_at, id); `search_vector` is the
# generated full-text column made by migration 0003.
SEARCH_PAGE_INCLUDE = [
    "channel_private",
    "channel_id",
    "category_id",
    "uploader_id",
    "status",
    "tag_keys",
    "search_vector",
]


DETAILS_UNREMINDED = "details_added_at IS NULL AND details_reminded_at IS NULL"


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("team_id", "slack_file_id"),
        Index("ix_images_team_sha256", "team_id", "sha256"),
        # Four 16-bit bands of the 64-bit perceptual hash: two hashes within Hamming
        # distance 3 share at least one band exactly (pigeonhole), so a near-duplicate
        # lookup is four indexed equality probes, never a table scan.
        Index("ix_images_team_phash_b0", "team_id", "phash_b0"),
        Index("ix_images_team_phash_b1", "team_id", "phash_b1"),
        Index("ix_images_team_phash_b2", "team_id", "phash_b2"),
        Index("ix_images_team_phash_b3", "team_id", "phash_b3"),
        Index("ix_images_team_created", "team_id", "created_at", "id"),
        # A person's App Home lists (bot.home), one index each: exactly the rows each reads.
        *(
            Index(
                f"ix_images_home_{name}",
                "team_id",
                "uploader_id",
                "created_at",
                "id",
                postgresql_where=text(where),
                sqlite_where=text(where),
            )
            for name, where in (
                ("missing", "storage_key IS NOT NULL AND details_added_at IS NULL"),
                ("recent", "storage_key IS NOT NULL AND details_added_at IS NOT NULL"),
            )
        ),
        # The worker's look every 5 min for images due a details reminder: only the images
        # never detailed nor reminded about, not the library.
        Index(
            "ix_images_details_unreminded",
            "id",
            postgresql_where=text(DETAILS_UNREMINDED),
            sqlite_where=text(DETAILS_UNREMINDED),
        ),
        Index("ix_images_team_message", "team_id", "channel_id", "message_ts"),
        Index("ix_images_team_sort", "team_id", "sort_at", "id"),
        Index("ix_images_team_category_sort", "team_id", "category_id", "sort_at"),
        Index("ix_images_tag_keys_gin", "tag_keys", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
        # Search's page and capped count in one backward index-only scan: every column a
        # search condition reads is here, for the images search can find (stored ones).
        Index(
            "ix_images_search_page",
            "team_id",
            "sort_at",
            "id",
            postgresql_include=SEARCH_PAGE_INCLUDE,
            postgresql_where=text("storage_key IS NOT NULL"),
        ).ddl_if(dialect="postgresql"),
        # The same on SQLite, which has no INCLUDE: the columns are part of the key.
        Index(
            "ix_images_search_page_lite",
            "team_id",
            "sort_at",
            "id",
            *SEARCH_PAGE_INCLUDE[:-1],
            sqlite_where=text("storage_key IS NOT NULL"),
        ).ddl_if(dialect="sqlite"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    slack_file_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    # Whether the channel was private (or a DM) when the image was posted: visibility.
    channel_private: Mapped[bool] = mapped_column(Boolean, default=False)
    message_ts: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    uploader_id: Mapped[str] = mapped_column(String(32))
    uploader_name: Mapped[str] = mapped_column(String(255), default="")
    permalink: Mapped[str | None] = mapped_column(String(1024))
    file_name: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("categories.id", ondelete="SET NULL")
    )
    tags: Mapped[list[str]] = mapped_column(TagList, default=list)
    # Casefolded tags, kept by the app beside `tags`: exact, case-insensitive tag filters.
    tag_keys: Mapped[list[str]] = mapped_column(TagList, default=list)
    shoot_date: Mapped[datetime | None]
    # The shoot date when known, else when it was posted: search order and date filters.
    sort_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=ImageStatus.DRAFT.value)
    details_added_at: Mapped[datetime | None]
    details_reminded_at: Mapped[datetime | None]
    duplicate_of_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("images.id", ondelete="SET NULL")
    )
    storage_key: Mapped[str | None] = mapped_column(String(512))
    delivery_url: Mapped[str | None] = mapped_column(String(1024))
    width: Mapped[int | None]
    height: Mapped[int | None]
    format: Mapped[str | None] = mapped_column(String(16))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    phash: Mapped[int | None] = mapped_column(BigInteger)
    phash_b0: Mapped[int | None]
    phash_b1: Mapped[int | None]
    phash_b2: Mapped[int | None]
    phash_b3: Mapped[int | None]
    camera: Mapped[str | None] = mapped_column(String(255))
    exif: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PostPrompt(Base):
    """One Slack message's images, told to their poster once: the "Add details" prompt, or
    the modal opened by the message shortcut (`view_id`), updated when all are settled.
    `prompted_at` is the claim to tell them, `told_at` the stamp that it was done."""

    __tablename__ = "post_prompts"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    view_id: Mapped[str | None] = mapped_column(String(64))
    prompted_at: Mapped[datetime | None]  # claimed: someone is telling the poster
    told_at: Mapped[datetime | None]  # told (bot.prompts)
    created_at: Mapped[datetime]


class IngestJob(Base):
    """The durable record of getting one Slack file into the media store.

    Written before the event is acknowledged; a job whose lease ran out (the process died
    mid-work) is picked up again by the worker's sweep.
    """

    __tablename__ = "ingest_jobs"
    __table_args__ = (
        Index("ix_ingest_jobs_state_next", "state", "next_attempt_at"),
        # The worker's look every 15 s for posts settled but never told: the last hour's jobs.
        Index("ix_ingest_jobs_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    image_id: Mapped[int] = mapped_column(
        Id, ForeignKey("images.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(16), default=IngestState.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    download_url: Mapped[str | None] = mapped_column(String(2048))
    mimetype: Mapped[str | None] = mapped_column(String(128))
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (
        UniqueConstraint("team_id", "name_key"),
        # Trigram index for typo-tolerant tag lookups (pg_trgm).
        Index(
            "ix_tags_name_trgm",
            "name_key",
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(50))
    name_key: Mapped[str] = mapped_column(String(50))
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class TagUse(Base):
    """How many images carry a tag, per conversation and per visibility of those images.

    Kept by database triggers on `images` (migration 0004), whoever writes the images, so
    "is this tag on an image the viewer may see?" is one primary-key probe: tag suggestions
    and typo corrections offer only those, and a private channel's tag names stay in it.
    """

    __tablename__ = "tag_uses"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Text, not String(50): a casefolded tag can be longer than the 50 characters typed
    # (German sharp s -> ss), and a trigger must never refuse an image's write.
    name_key: Mapped[str] = mapped_column(Text, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_private: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    uses: Mapped[int] = mapped_column(Integer)


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("team_id", "name_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(75))
    name_key: Mapped[str] = mapped_column(String(75))
    approval_policy: Mapped[str] = mapped_column(String(8), default="any")
    default_approvers: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]


class Channel(Base):
    """Every conversation the library has images from, and whether only members see it:
    the short list a viewer's memberships are checked against."""

    __tablename__ = "channels"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    is_private: Mapped[bool] = mapped_column(Boolean)
    # When Slack last said whether it is private; None: never asked, so treated as private.
    checked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class WatchedChannel(Base):
    __tablename__ = "watched_channels"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    category_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("categories.id", ondelete="SET NULL")
    )
    added_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class ApprovalRequest(Base):
    __tablename__ = "approval_requests"
    __table_args__ = (
        Index("ix_approval_requests_team_image", "team_id", "image_id"),
        # The worker's looks, oldest first: open requests due a reminder (every 5 min) and
        # outcomes never told (every 15 s), not every request ever made.
        Index("ix_approval_requests_state", "state", "id"),
        Index("ix_approval_requests_untold", "outcome_told_at", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    image_id: Mapped[int] = mapped_column(Id, ForeignKey("images.id", ondelete="CASCADE"))
    requested_by: Mapped[str] = mapped_column(String(32))
    policy: Mapped[str] = mapped_column(String(8), default="any")
    note: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="open")
    decided_at: Mapped[datetime | None]
    last_reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    # Telling the requester how it ended: claimed by one process, stamped once told
    # (bot.approval_queue.claim_outcome), so a process dying in between loses nothing.
    outcome_claimed_until: Mapped[datetime | None]
    outcome_told_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ApprovalVote(Base):
    """One approver of one request: their decision and the DM card that shows it."""

    __tablename__ = "approval_votes"
    __table_args__ = (UniqueConstraint("request_id", "approver_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[int] = mapped_column(
        Id, ForeignKey("approval_requests.id", ondelete="CASCADE")
    )
    approver_id: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None]
    card_channel: Mapped[str | None] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))


class AuditEvent(Base):
    """Append-only: who did what to which image, and when."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_team_image", "team_id", "image_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    image_id: Mapped[int | None] = mapped_column(Id, ForeignKey("images.id", ondelete="SET NULL"))
    actor_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]


class ProcessedEvent(Base):
    """Slack event ids already handled, so retried deliveries do the work once."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(index=True)
