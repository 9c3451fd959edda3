"""details, duplicates and prompts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 18:33:57.052718
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "post_prompts",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("view_id", sa.String(length=64), nullable=True),
        sa.Column("prompted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "team_id", "channel_id", "message_ts", name=op.f("pk_post_prompts")
        ),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("details_reminded_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "duplicate_of_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_images_duplicate_of_id_images"),
            "images",
            ["duplicate_of_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            "ix_images_team_uploader_created", ["team_id", "uploader_id", "created_at"]
        )
        batch_op.create_index("ix_images_team_message", ["team_id", "channel_id", "message_ts"])


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_team_message")
        batch_op.drop_index("ix_images_team_uploader_created")
        batch_op.drop_constraint(batch_op.f("fk_images_duplicate_of_id_images"), type_="foreignkey")
        batch_op.drop_column("duplicate_of_id")
        batch_op.drop_column("details_reminded_at")

    op.drop_table("post_prompts")
