"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 18:18:17.441868
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Tags are a text[] on Postgres (GIN-indexed) and JSON on SQLite.
TAG_LIST = postgresql.ARRAY(sa.Text()).with_variant(sa.JSON(), "sqlite")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "categories",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=75), nullable=False),
        sa.Column("name_key", sa.String(length=75), nullable=False),
        sa.Column("approval_policy", sa.String(length=8), nullable=False),
        sa.Column("default_approvers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("team_id", "name_key", name=op.f("uq_categories_team_id_name_key")),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(
        op.f("ix_processed_events_created_at"), "processed_events", ["created_at"], unique=False
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("name_key", sa.String(length=50), nullable=False),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("team_id", "name_key", name=op.f("uq_tags_team_id_name_key")),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("slack_file_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("uploader_id", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "category_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("tags", TAG_LIST, nullable=False),
        sa.Column("shoot_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("details_added_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("storage_key", sa.String(length=512), nullable=True),
        sa.Column("delivery_url", sa.String(length=1024), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("phash", sa.BigInteger(), nullable=True),
        sa.Column("phash_b0", sa.Integer(), nullable=True),
        sa.Column("phash_b1", sa.Integer(), nullable=True),
        sa.Column("phash_b2", sa.Integer(), nullable=True),
        sa.Column("phash_b3", sa.Integer(), nullable=True),
        sa.Column("camera", sa.String(length=255), nullable=True),
        sa.Column("exif", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_images_category_id_categories"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint(
            "team_id", "slack_file_id", name=op.f("uq_images_team_id_slack_file_id")
        ),
    )
    op.create_index(
        "ix_images_team_created", "images", ["team_id", "created_at", "id"], unique=False
    )
    op.create_index("ix_images_team_phash_b0", "images", ["team_id", "phash_b0"], unique=False)
    op.create_index("ix_images_team_phash_b1", "images", ["team_id", "phash_b1"], unique=False)
    op.create_index("ix_images_team_phash_b2", "images", ["team_id", "phash_b2"], unique=False)
    op.create_index("ix_images_team_phash_b3", "images", ["team_id", "phash_b3"], unique=False)
    op.create_index("ix_images_team_sha256", "images", ["team_id", "sha256"], unique=False)
    op.create_table(
        "watched_channels",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column(
            "category_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("added_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_watched_channels_category_id_categories"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("team_id", "channel_id", name=op.f("pk_watched_channels")),
    )
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("image_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_approval_requests_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
    )
    op.create_index(
        "ix_approval_requests_team_image",
        "approval_requests",
        ["team_id", "image_id"],
        unique=False,
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("image_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("actor_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_audit_events_image_id_images"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        "ix_audit_events_team_image", "audit_events", ["team_id", "image_id", "id"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_images_tags_gin", "images", ["tags"], unique=False, postgresql_using="gin"
        )
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("image_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("download_url", sa.String(length=2048), nullable=True),
        sa.Column("mimetype", sa.String(length=128), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_ingest_jobs_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_jobs")),
        sa.UniqueConstraint("image_id", name=op.f("uq_ingest_jobs_image_id")),
    )
    op.create_index(
        "ix_ingest_jobs_state_next", "ingest_jobs", ["state", "next_attempt_at"], unique=False
    )
    op.create_table(
        "approval_votes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("approver_id", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("card_channel", sa.String(length=32), nullable=True),
        sa.Column("card_ts", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_requests.id"],
            name=op.f("fk_approval_votes_request_id_approval_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_votes")),
        sa.UniqueConstraint(
            "request_id", "approver_id", name=op.f("uq_approval_votes_request_id_approver_id")
        ),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_images_tags_gin", table_name="images")

    op.drop_table("approval_votes")
    op.drop_index("ix_ingest_jobs_state_next", table_name="ingest_jobs")
    op.drop_table("ingest_jobs")
    op.drop_index("ix_audit_events_team_image", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_approval_requests_team_image", table_name="approval_requests")
    op.drop_table("approval_requests")
    op.drop_table("watched_channels")
    op.drop_index("ix_images_team_sha256", table_name="images")
    op.drop_index("ix_images_team_phash_b3", table_name="images")
    op.drop_index("ix_images_team_phash_b2", table_name="images")
    op.drop_index("ix_images_team_phash_b1", table_name="images")
    op.drop_index("ix_images_team_phash_b0", table_name="images")
    op.drop_index("ix_images_team_created", table_name="images")
    op.drop_table("images")
    op.drop_table("tags")
    op.drop_index(op.f("ix_processed_events_created_at"), table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("categories")
