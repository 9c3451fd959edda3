"""Who may come in: the workspaces the app is installed in, and the tables of the doors
outside Slack (web sign-in links and sessions, API tokens and their idempotency keys, client
review links and agency upload links). Every secret in these is kept as a SHA-256 hash, never
in the clear. (Installed workspaces' bot tokens are in slack_sdk's own installation tables,
`slack_bots` and `slack_installations`, made by migration 0008.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ColumnElement, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, Id


class Workspace(Base):
    """A workspace the app was installed in from /slack/install. Uninstalling stamps
    `uninstalled_at` and keeps its library; the library's jobs skip it until it is installed
    again (`bot.workspaces`). A single-workspace deployment (SLACK_BOT_TOKEN) has no rows."""

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    installed_by: Mapped[str] = mapped_column(String(32))
    installed_at: Mapped[datetime]
    uninstalled_at: Mapped[datetime | None]


class SignInLink(Base):
    """One-time web sign-in links (the local owner's, printed by `make run`): only a hash of
    the token is kept, and redeeming one stamps `used_at` in the same statement that checks
    it, so a link works once even when two requests race."""

    __tablename__ = "sign_in_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class WebSession(Base):
    """A web sign-in, kept on the server so signing out ends it everywhere (the cookie only
    carries its random id; only a hash of that is stored)."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ApiToken(Base):
    """A personal access token for the JSON API: it acts as its person. Only a hash of the
    token is kept; `prefix` (the first characters) lets its owner recognise it in a list."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_team_user", "team_id", "user_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` on an API upload and the answer it got, so a retried
    request gets the same answer instead of storing the images twice. `status` is None
    while the first request is still working."""

    __tablename__ = "idempotency_keys"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


class ReviewLink(Base):
    """An approver outside Slack (a client): a signed link to a review page. Their votes are
    `approval_votes` rows whose `approver_id` is `review:<id>`, so they count under a
    request's policy like anyone's. Only a hash of the link's token is kept."""

    __tablename__ = "review_links"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class UploadLink(Base):
    """A link through which people outside the workspace (an agency) upload into one
    category, under one conversation's rules (or the workspace's). Only a hash is kept."""

    __tablename__ = "upload_links"
    __table_args__ = (Index("ix_upload_links_team", "team_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(200))
    category_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("categories.id", ondelete="SET NULL")
    )
    conversation_id: Mapped[str] = mapped_column(String(32))
    conversation_private: Mapped[bool] = mapped_column(Boolean)
    notify_channel: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(32))
    max_files: Mapped[int | None]
    files_received: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class UploadLinkImage(Base):
    """An image that came through an upload link, and whether its notice went out: the
    notice job claims rows (`notice_claimed_until`, a lease) and stamps `announced_at` once
    the notice is sent, so a restart neither loses nor repeats one."""

    __tablename__ = "upload_link_images"
    __table_args__ = (Index("ix_upload_link_images_pending", "announced_at", "link_id"),)

    image_id: Mapped[int] = mapped_column(
        Id, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    link_id: Mapped[int] = mapped_column(Id, ForeignKey("upload_links.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    notice_claimed_until: Mapped[datetime | None]
    announced_at: Mapped[datetime | None]


def still_installed(team_id: ColumnElement[str]) -> ColumnElement[bool]:
    """A WHERE clause keeping rows of workspaces the app has not been uninstalled from: the
    jobs (reminders, notices, ingest retries, channel checks) skip an uninstalled workspace's
    rows, which wait, unclaimed, for it to be installed again."""
    uninstalled = select(Workspace.team_id).where(Workspace.uninstalled_at.is_not(None))
    return team_id.not_in(uninstalled)
